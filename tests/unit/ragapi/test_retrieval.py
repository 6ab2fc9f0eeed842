"""RRF fusion, budget trimming and chunk planning: pure decisions."""

from __future__ import annotations

import pytest

from ragapi.retrieval import Hit, rrf_fuse, trim_to_budget, vector_only
from ragapi.store.documents import plan_chunks
from ragapi.store.search import Candidate


def cand(chunk_id: int, score: float = 0.0, tokens: int = 10) -> Candidate:
    return Candidate(
        chunk_id, f"doc-{chunk_id}", f"s{chunk_id}", "", f"text {chunk_id}", tokens, score
    )


def test_rrf_rewards_agreement_between_lists() -> None:
    vector = [cand(1), cand(2), cand(3)]
    text = [cand(3), cand(4)]
    fused = rrf_fuse(vector, text, rrf_k=60, top_k=10)
    assert [h.chunk_id for h in fused] == [3, 1, 2, 4]
    assert fused[0].score == pytest.approx(1 / 63 + 1 / 61)
    assert (fused[0].vector_rank, fused[0].text_rank) == (3, 1)
    assert fused[-1].vector_rank is None and fused[-1].text_rank == 2


def test_rrf_ties_break_on_vector_rank_then_id_and_top_k_cuts() -> None:
    fused = rrf_fuse([cand(5), cand(6)], [cand(7), cand(8)], rrf_k=10, top_k=3)
    # 5 and 7 tie at 1/11; the vector hit wins, then 6 vs 8 tie at 1/12.
    assert [h.chunk_id for h in fused] == [5, 7, 6]


def test_rrf_with_empty_lists() -> None:
    assert rrf_fuse([], [], rrf_k=60, top_k=5) == []
    assert [h.chunk_id for h in rrf_fuse([], [cand(1)], rrf_k=60, top_k=5)] == [1]


def test_vector_only_keeps_similarity_as_score() -> None:
    hits = vector_only([cand(1, 0.9), cand(2, 0.8)], top_k=1)
    assert [(h.chunk_id, h.score, h.vector_rank) for h in hits] == [(1, 0.9, 1)]


def _hit(chunk_id: int, tokens: int) -> Hit:
    return Hit(chunk_id, "d", "s", "", "t", tokens, 1.0)


def test_trim_keeps_best_hits_that_fit() -> None:
    hits = [_hit(1, 50), _hit(2, 80), _hit(3, 30), _hit(4, 20)]
    assert [h.chunk_id for h in trim_to_budget(hits, 100)] == [1, 3, 4]
    assert trim_to_budget(hits, 10) == []
    assert [h.chunk_id for h in trim_to_budget(hits, 1000)] == [1, 2, 3, 4]


def test_plan_reuses_unchanged_chunks_and_retires_the_rest() -> None:
    live = [(10, b"a"), (11, b"b"), (12, b"c")]
    plan = plan_chunks(live, [b"a", b"x", b"c", b"y"])
    assert plan.ids == [10, None, 12, None]
    assert plan.to_insert == [1, 3]
    assert plan.retire == [11]
    assert plan.written == 2


def test_plan_treats_repeated_text_as_a_multiset() -> None:
    plan = plan_chunks([(1, b"r"), (2, b"r"), (3, b"s")], [b"r", b"s", b"r", b"r"])
    assert plan.ids == [1, 3, 2, None]
    assert plan.to_insert == [3] and plan.retire == []
    shrink = plan_chunks([(1, b"r"), (2, b"r")], [b"r"])
    assert shrink.ids == [1] and shrink.retire == [2]


def test_plan_for_a_new_document_inserts_everything() -> None:
    plan = plan_chunks([], [b"a", b"b"])
    assert plan.ids == [None, None] and plan.to_insert == [0, 1] and plan.retire == []
