"""A deterministic, dependency-free embedder for unit and integration tests only.

Bag of words hashed into ``dimensions`` buckets with a hashed sign (the "hashing trick"),
then L2-normalised: texts sharing words get a high cosine, unrelated texts about zero.
It needs no model, so tests stay fast and exact; it is deliberately not in the package.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Implements :class:`ragapi.embedding.base.Embedder`."""

    def __init__(self, dimensions: int = 384) -> None:
        if dimensions < 1:
            raise ValueError("dimensions must be at least 1")
        self.model = f"test-hashing-{dimensions}"
        self.dimensions = dimensions
        self.calls: list[list[str]] = []  # lets tests assert what was (not) re-embedded

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [self.vector(text) for text in texts]

    async def embed_query(self, text: str) -> list[float]:
        return self.vector(text)

    def vector(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        # Text without words still gets a fixed unit vector, so every output is unit-norm.
        for word in _WORD.findall(text.lower()) or [""]:
            # blake2b, not hash(): str hashes are salted per process.
            digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
            vector[digest % self.dimensions] += 1.0 if digest >> 63 else -1.0
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0.0:  # every word cancelled out in shared buckets
            vector[0], norm = 1.0, 1.0
        return [x / norm for x in vector]
