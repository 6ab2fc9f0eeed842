"""Split parsed documents into embedding-sized chunks, counted in model word pieces.

STRUCTURED (the default) chunks every section on its own, so editing one section changes
only that section's chunks and re-ingestion can skip every chunk whose content hash is
unchanged. Within a section it packs whole paragraphs; a paragraph too long for a chunk
is split at sentence boundaries, and a sentence too long at word (else word-piece)
boundaries. Consecutive chunks of a section overlap a little, so a fact that straddles a
cut is still whole in one of them. FIXED ignores structure: sliding token windows.

Every chunk's ``text`` counts at most ``max_tokens`` word pieces, heading included.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ragapi.parsing import ParsedDocument
from ragapi.tokens import Tokenizer, load_minilm_tokenizer

MIN_MAX_TOKENS = 16
HEADING_SEPARATOR = " > "

# Boundary strength before a word piece; a chunk ends at the strongest boundary in
# reach and an overlap starts at the strongest one it can.
_PIECE = 0  # inside a word
_PRETOKEN = 1  # punctuation or CJK character: the tokenizer splits here
_WORD = 2  # after whitespace
_SENTENCE = 3
_PARAGRAPH = 4

# A sentence ends at . ! ? … (then closing quotes/brackets) before whitespace and a
# character that is not lowercase ("e.g. this" is one sentence); CJK full stops need no
# whitespace.
# (Escapes: the closing quotes, fullwidth punctuation and brackets are look-alikes.)
_LATIN_SENTENCE_END = re.compile("[.!?\u2026]+[\"'\u201d\u2019)\\]]*\\s+")
_CJK_SENTENCE_END = re.compile('[\u3002\uff01\uff1f]+[\u300d\u300f\uff09"\u201d\u2019]*\\s*')
_LINE_BREAK = re.compile(r"\n\s*")


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    heading: str
    text: str
    token_count: int
    content_hash: bytes


class ChunkingStrategy(StrEnum):
    STRUCTURED = "structured"
    FIXED = "fixed"


def chunk_document(
    doc: ParsedDocument,
    *,
    max_tokens: int = 200,
    overlap_tokens: int = 30,
    strategy: ChunkingStrategy = ChunkingStrategy.STRUCTURED,
    tokenizer: Tokenizer | None = None,
) -> list[Chunk]:
    """Chunk ``doc``; ``ordinal`` numbers the chunks in document order."""
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}, got {max_tokens}")
    if overlap_tokens < 0 or 2 * overlap_tokens >= max_tokens:
        raise ValueError(
            f"overlap_tokens must be >= 0 and below max_tokens / 2, got {overlap_tokens}"
        )
    tok = tokenizer or load_minilm_tokenizer()

    pieces: list[tuple[str, str]] = []
    if strategy == ChunkingStrategy.FIXED:
        pieces.extend(("", body) for body in _windows(doc.text, tok, max_tokens, overlap_tokens))
    else:
        for section in doc.sections:
            heading = _heading(section.heading_path, tok, max_tokens)
            paragraphs = [p.strip() for p in section.paragraphs if p.strip()]
            budget = max_tokens - tok.count(heading)
            pieces.extend(
                (heading, body) for body in _pack(paragraphs, tok, budget, overlap_tokens)
            )

    texts = [f"{heading}\n\n{body}" if heading else body for heading, body in pieces]
    # The final count is the tokenizer's own, not our arithmetic (one batched call).
    counts = [len(e.ids) for e in tok.encode_batch(texts)]
    chunks = [
        Chunk(
            ordinal=ordinal,
            heading=heading,
            text=text,
            token_count=count,
            content_hash=hashlib.sha256(text.encode()).digest(),
        )
        for ordinal, ((heading, _), text, count) in enumerate(
            zip(pieces, texts, counts, strict=True)
        )
    ]
    return chunks


def _heading(path: Sequence[str], tok: Tokenizer, max_tokens: int) -> str:
    heading = HEADING_SEPARATOR.join(part.strip() for part in path if part.strip())
    # A quarter of the budget at most, so a runaway heading still leaves room for the
    # body plus overlap (overlap < max/2, see the argument check).
    return tok.truncate(heading, max_tokens // 4)


class _Tokens:
    """``text``'s word pieces and, before each, how good a place to cut it is."""

    def __init__(self, text: str, tok: Tokenizer, paragraph_starts: Sequence[int] = ()) -> None:
        encoding = tok.encode(text)
        self.text = text
        self.offsets = encoding.offsets
        self.n = len(self.offsets)
        paragraphs = sorted(paragraph_starts)
        sentence_set = {m.end() for m in _CJK_SENTENCE_END.finditer(text)}
        sentence_set.update(m.end() for m in _LINE_BREAK.finditer(text))
        sentence_set.update(
            m.end()
            for m in _LATIN_SENTENCE_END.finditer(text)
            if m.end() < len(text) and not text[m.end()].islower()
        )
        sentences = sorted(sentence_set)
        words = encoding.word_ids
        # levels[t] is the boundary before piece t; the end of the text is the strongest.
        self.levels = [_PARAGRAPH] * (self.n + 1)
        for t in range(1, self.n):
            # A boundary belongs to piece t if it falls in the gap before it (the gap may
            # hold characters the tokenizer drops, e.g. zero-width spaces).
            gap = (self.offsets[t - 1][1], self.offsets[t][0])
            if _any_within(paragraphs, *gap):
                level = _PARAGRAPH
            elif _any_within(sentences, *gap):
                level = _SENTENCE
            elif gap[1] > gap[0]:
                level = _WORD
            elif words[t] != words[t - 1]:
                level = _PRETOKEN
            else:
                level = _PIECE
            self.levels[t] = level

    def span(self, start: int, end: int) -> str:
        """The original text of pieces ``start`` to ``end`` (exclusive)."""
        return self.text[self.offsets[start][0] : self.offsets[end - 1][1]]

    def best(self, lo: int, hi: int, *, furthest: bool) -> int:
        """The strongest boundary in ``[lo, hi]`` (non-empty), ties to the furthest or first."""
        candidates = range(hi, lo - 1, -1) if furthest else range(lo, hi + 1)
        return max(candidates, key=self.levels.__getitem__)  # max keeps the first maximum


def _pack(paragraphs: Sequence[str], tok: Tokenizer, budget: int, overlap: int) -> Iterator[str]:
    """One section's chunk bodies, each at most ``budget`` pieces."""
    starts: list[int] = []
    position = 0
    for paragraph in paragraphs:
        starts.append(position)
        position += len(paragraph) + 2
    tokens = _Tokens("\n\n".join(paragraphs), tok, starts)
    if tokens.n == 0:
        return
    cuts = _cut_points(tokens, budget - overlap)

    start = end = 0
    while end < tokens.n:
        previous_end = end
        # Greedy: the furthest allowed cut in reach. One exists, since no unit between
        # cuts is longer than budget - overlap and start >= previous_end - overlap.
        end = cuts[bisect.bisect_right(cuts, start + budget) - 1]
        body, end = _fit(tokens, tok, start, end, previous_end, budget)
        yield body
        if end < tokens.n:
            start = _overlap_start(tokens, max(start + 1, end - overlap), end)


def _cut_points(tokens: _Tokens, unit: int) -> list[int]:
    """Where chunks may end: paragraph ends, plus finer cuts inside paragraphs (then
    sentences) longer than ``unit`` pieces, so that no stretch between cuts exceeds it."""
    levels = tokens.levels
    paragraphs = [t for t in range(1, tokens.n + 1) if levels[t] == _PARAGRAPH]
    cuts = set(paragraphs)
    for p0, p1 in zip([0, *paragraphs[:-1]], paragraphs, strict=True):
        if p1 - p0 <= unit:
            continue
        sentences = [t for t in range(p0 + 1, p1) if levels[t] >= _SENTENCE]
        cuts.update(sentences)
        for s0, s1 in zip([p0, *sentences], [*sentences, p1], strict=True):
            position = s0
            while s1 - position > unit:
                # Inside one sentence: the furthest word (else pre-token, else piece) start.
                position = tokens.best(position + 1, position + unit, furthest=True)
                cuts.add(position)
    return sorted(cuts)


def _overlap_start(tokens: _Tokens, lo: int, end: int) -> int:
    """Where the next chunk starts: the earliest strongest boundary in ``[lo, end)``, so
    the overlap is as long as allowed while starting at a sentence (else word) start."""
    return end if lo >= end else tokens.best(lo, end - 1, furthest=False)


def _fit(
    tokens: _Tokens, tok: Tokenizer, start: int, end: int, floor: int, budget: int
) -> tuple[str, int]:
    """The span's text and end, shrunk until the tokenizer agrees it fits ``budget``.

    Spans cut at word boundaries re-tokenize to exactly ``end - start`` pieces; only a
    span starting inside a word (a suffix like "ffable" of "unaffable") may re-tokenize
    longer, so this almost never loops.
    """
    for first in dict.fromkeys((start, floor)):  # then retry without the overlap
        for last in range(end, floor, -1):
            text = tokens.span(first, last)
            if tok.count(text) <= budget:
                return text, last
    # Pathological (a single piece that re-tokenizes past the budget): clip the text.
    return tok.truncate(tokens.span(floor, floor + 1), budget), floor + 1


def _windows(text: str, tok: Tokenizer, size: int, overlap: int) -> Iterator[str]:
    tokens = _Tokens(text, tok)
    start = end = 0
    while end < tokens.n:
        previous_end = end
        body, end = _fit(tokens, tok, start, min(start + size, tokens.n), previous_end, size)
        yield body
        start = end - overlap if end - overlap > start else end


def _any_within(sorted_positions: Sequence[int], lo: int, hi: int) -> bool:
    """Whether some position p satisfies lo <= p <= hi."""
    i = bisect.bisect_left(sorted_positions, lo)
    return i < len(sorted_positions) and sorted_positions[i] <= hi
