"""Text embedding: the provider interface and the in-process MiniLM implementation.

The local implementation's names are loaded on first use, so processes that only talk
to a remote embedder never import onnxruntime (about 0.2 s and a good deal of memory).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ragapi.embedding.base import Embedder

if TYPE_CHECKING:
    from ragapi.embedding.local import (
        DIMENSIONS,
        MAX_SEQ_LENGTH,
        MODEL_ID,
        MODEL_SHA256,
        TOKENIZER_SHA256,
        LocalEmbedder,
    )

__all__ = [
    "DIMENSIONS",
    "MAX_SEQ_LENGTH",
    "MODEL_ID",
    "MODEL_SHA256",
    "TOKENIZER_SHA256",
    "Embedder",
    "LocalEmbedder",
]

_LOCAL_NAMES = frozenset(__all__) - {"Embedder"}


def __getattr__(name: str) -> object:
    if name in _LOCAL_NAMES:
        return getattr(importlib.import_module("ragapi.embedding.local"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
