"""Pure ranking decisions: reciprocal rank fusion and trimming context to a token budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ragapi.store.search import Candidate


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: Any
    source: str
    heading: str
    text: str
    token_count: int
    score: float  # fused RRF score
    vector_rank: int | None = None  # 1-based rank in the vector list, None if absent
    text_rank: int | None = None
    similarity: float | None = None  # vector similarity when the chunk was a vector hit


def _hit(c: Candidate, score: float, **ranks: Any) -> Hit:
    return Hit(
        c.chunk_id, c.document_id, c.source, c.heading, c.text, c.token_count, score=score, **ranks
    )


def rrf_fuse(
    vector: Sequence[Candidate], text: Sequence[Candidate], *, rrf_k: int, top_k: int
) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over lists of 1 / (rrf_k + rank).

    Ties break on the better vector rank, then the chunk id, so results are stable.
    """
    hits: dict[int, Hit] = {}
    for rank, c in enumerate(vector, start=1):
        hits[c.chunk_id] = _hit(c, 1.0 / (rrf_k + rank), vector_rank=rank, similarity=c.score)
    for rank, c in enumerate(text, start=1):
        prior = hits.get(c.chunk_id)
        score = 1.0 / (rrf_k + rank)
        if prior is None:
            hits[c.chunk_id] = _hit(c, score, text_rank=rank)
        else:
            hits[c.chunk_id] = replace(prior, score=prior.score + score, text_rank=rank)
    ordered = sorted(
        hits.values(), key=lambda h: (-h.score, h.vector_rank or 1_000_000, h.chunk_id)
    )
    return ordered[:top_k]


def vector_only(vector: Sequence[Candidate], *, top_k: int) -> list[Hit]:
    return [
        _hit(c, c.score, vector_rank=rank, similarity=c.score)
        for rank, c in enumerate(vector[:top_k], start=1)
    ]


def trim_to_budget(hits: Sequence[Hit], max_tokens: int) -> list[Hit]:
    """Keep the most relevant hits whose token counts fit the budget.

    Hits arrive best first; a hit that does not fit is skipped (a smaller, lower-ranked
    one may still fit), so the context is the best set that fits greedily by relevance.
    """
    kept: list[Hit] = []
    used = 0
    for h in hits:
        if used + h.token_count <= max_tokens:
            kept.append(h)
            used += h.token_count
    return kept
