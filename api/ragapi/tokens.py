"""Word-piece counting and cutting with the embedding model's own tokenizer.

Chunk budgets are only meaningful when counted by the tokenizer the embedder uses, so
chunking and the local embedder share this one vendored file (see
``embedding/assets/NOTICE``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import tokenizers

#: The vendored all-MiniLM-L6-v2 tokenizer. Located by path rather than
#: importlib.resources so that loading it never imports the (onnxruntime-heavy)
#: ``ragapi.embedding`` package.
MINILM_TOKENIZER_PATH = (
    Path(__file__).resolve().parent / "embedding" / "assets" / "minilm-tokenizer.json"
)


class Tokenizer:
    """A thin, typed wrapper over :class:`tokenizers.Tokenizer`.

    Instances are never reconfigured after construction (``configured`` returns a copy),
    so one instance can be shared across threads.
    """

    __slots__ = ("_inner",)

    def __init__(self, inner: tokenizers.Tokenizer) -> None:
        self._inner = inner

    @classmethod
    def from_bytes(cls, data: bytes) -> Tokenizer:
        """Load a ``tokenizer.json``; truncation and padding are switched off."""
        inner = tokenizers.Tokenizer.from_buffer(data)
        # The upstream file ships truncation/padding at 128, which would silently
        # clip counts; callers opt back in with ``configured``.
        inner.no_truncation()
        inner.no_padding()
        return cls(inner)

    @classmethod
    def from_file(cls, path: Path) -> Tokenizer:
        return cls.from_bytes(path.read_bytes())

    @property
    def inner(self) -> tokenizers.Tokenizer:
        return self._inner

    def configured(
        self, *, truncate_at: int | None = None, pad_to_longest: bool = False
    ) -> Tokenizer:
        """An independent copy with truncation (special tokens included) and/or padding."""
        inner = tokenizers.Tokenizer.from_str(self._inner.to_str())
        if truncate_at is not None:
            inner.enable_truncation(max_length=truncate_at)
        if pad_to_longest:
            pad_id = inner.token_to_id("[PAD]")
            pad_id = 0 if pad_id is None else pad_id
            inner.enable_padding(pad_id=pad_id, pad_token="[PAD]")  # noqa: S106 (not a secret)
        return Tokenizer(inner)

    def encode(self, text: str, *, add_special_tokens: bool = False) -> tokenizers.Encoding:
        return self._inner.encode(text, add_special_tokens=add_special_tokens)

    def encode_batch(
        self, texts: Sequence[str], *, add_special_tokens: bool = False
    ) -> list[tokenizers.Encoding]:
        # tokenizers parallelises batches natively (and releases the GIL).
        return self._inner.encode_batch(list(texts), add_special_tokens=add_special_tokens)

    def count(self, text: str) -> int:
        """Number of word pieces in ``text``, without special tokens."""
        return len(self._inner.encode(text, add_special_tokens=False).ids)

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` character span of every word piece of ``text``."""
        return self._inner.encode(text, add_special_tokens=False).offsets

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` holding at most ``max_tokens`` word pieces.

        The cut falls at the end of a word piece. Re-tokenizing a word-piece prefix
        yields the same pieces (WordPiece matches greedily from the left), so the
        result counts at most ``max_tokens``; the loop only guards odd inputs.
        """
        offsets = self.offsets(text)
        if len(offsets) <= max_tokens:
            return text
        for n in range(max(max_tokens, 0), 0, -1):
            prefix = text[: offsets[n - 1][1]]
            if self.count(prefix) <= max_tokens:
                return prefix
        return ""


@functools.cache
def load_minilm_tokenizer() -> Tokenizer:
    """The shared all-MiniLM-L6-v2 tokenizer (no truncation, no padding)."""
    return Tokenizer.from_file(MINILM_TOKENIZER_PATH)
