"""The embedding provider interface every backend (local ONNX, remote APIs) implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Embedder(Protocol):
    """Turns text into fixed-size vectors.

    ``model`` is a stable id stored next to every vector: vectors from different models
    are not comparable, so a change of id means re-embedding.
    """

    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed documents (chunks), in input order; batching is the embedder's business."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """Embed a search query (models with query/document prefixes differ here)."""
        ...
