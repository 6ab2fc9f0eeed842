"""The extractive answerer, prompts and citation parsing."""

from __future__ import annotations

from ragapi.prompts import build_messages, cited_hits
from ragapi.providers.extractive import NOTHING_FOUND, extract_answer
from ragapi.retrieval import Hit


def hit(n: int, text: str, heading: str = "") -> Hit:
    return Hit(n, f"doc{n}", f"src{n}.md", heading, text, len(text.split()), 1.0 / n)


HITS = [
    hit(
        1,
        "Guide > Disk\n\nWhen the disk is full, delete old WAL segments. Then extend the volume.",
        "Guide > Disk",
    ),
    hit(2, "Latency rises under load. Add replicas to the deployment."),
    hit(3, "The disk alarm pages the on-call engineer."),
]


def test_extractive_picks_overlapping_sentences_in_rank_order_and_cites_them() -> None:
    ex = extract_answer("What to do when the disk is full?", HITS)
    assert ex.text == (
        "When the disk is full, delete old WAL segments. [1] The disk alarm pages the on-call engineer. [3]"
    )
    assert [h.chunk_id for h in ex.cited] == [1, 3]
    # The heading is context, not an answer sentence.
    assert "Guide > Disk" not in ex.text


def test_extractive_without_overlap_uses_the_best_passage() -> None:
    ex = extract_answer("zzz qqq", HITS)
    assert ex.text.endswith("[1]") and [h.chunk_id for h in ex.cited] == [1]


def test_extractive_with_no_hits() -> None:
    ex = extract_answer("anything", [])
    assert ex.text == NOTHING_FOUND and ex.cited == []


def test_prompt_numbers_sources_and_keeps_history() -> None:
    messages = build_messages("Why?", HITS[:2], [{"role": "user", "content": "hi"}])
    assert [m["role"] for m in messages] == ["system", "user", "user"]
    assert messages[-1]["content"].startswith("Sources:\n\n[1] (source: src1.md)\n")
    assert "\n\n[2] (source: src2.md)\nLatency rises" in messages[-1]["content"]
    assert messages[-1]["content"].endswith("Question: Why?")


def test_cited_hits_follow_markers_and_ignore_out_of_range() -> None:
    assert [h.chunk_id for h in cited_hits("a [2] b [1][2] c [9]", HITS)] == [2, 1]
    assert [h.chunk_id for h in cited_hits("no markers", HITS)] == [1, 2, 3]
