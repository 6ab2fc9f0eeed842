"""Hybrid retrieval over HTTP: relevance, filters that still return top_k, ef_search."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.provider_server import Fault, ProviderServer

pytestmark = pytest.mark.integration

TOPICS = [
    ("kubernetes", "The operator reconciles custom resources into Deployments and Jobs."),
    ("postgres", "Postgres stores the chunks and pgvector builds the HNSW graph."),
    ("redis", "Redis keeps rate-limit windows and the answer cache."),
    ("billing", "Budgets cap provider spend per month in US dollars."),
]


@pytest.fixture(scope="module")
def filtered_corpus(admin: httpx.Client) -> dict[str, list[str]]:
    """40 small documents in index `filtered`: 10 per topic, 3 of each tagged `rare`."""
    sources: dict[str, list[str]] = {t: [] for t, _ in TOPICS}
    run = uuid.uuid4().hex[:8]
    for topic, sentence in TOPICS:
        for n in range(10):
            source = f"{run}/{topic}-{n}.txt"
            tags = [topic] + (["rare"] if n < 3 else [])
            resp = admin.post(
                "/v1/indexes/filtered/documents",
                json={
                    "source": source,
                    "content": f"{sentence} Note {n} of {topic}.",
                    "tags": tags,
                    "metadata": {"topic": topic, "n": n},
                },
            )
            assert resp.status_code == 201, resp.text
            sources[topic].append(source)
    return sources


def test_relevant_document_ranks_first(
    admin: httpx.Client, filtered_corpus: dict[str, list[str]]
) -> None:
    resp = admin.post(
        "/v1/indexes/filtered/search",
        json={"query": "how is spend on providers capped", "top_k": 5},
    )
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert len(results) == 5
    assert all(r["source"] in filtered_corpus["billing"] for r in results[:3])
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)


def test_tag_filter_still_returns_top_k(
    admin: httpx.Client, filtered_corpus: dict[str, list[str]]
) -> None:
    # The `filtered` index has efSearch 10 and top_k 10: a post-filter over 10 HNSW
    # candidates would find ~2 redis documents; the strategy must still return all 10.
    resp = admin.post(
        "/v1/indexes/filtered/search",
        json={
            "query": "how is spend on providers capped",
            "top_k": 10,
            "filters": {"tags": ["redis"]},
        },
    )
    results = resp.json()["results"]
    assert len(results) == 10
    assert {r["source"] for r in results} == set(filtered_corpus["redis"])


def test_filter_with_fewer_matches_than_top_k(
    admin: httpx.Client, filtered_corpus: dict[str, list[str]]
) -> None:
    resp = admin.post(
        "/v1/indexes/filtered/search",
        json={"query": "redis cache", "top_k": 10, "filters": {"tags": ["redis", "rare"]}},
    )
    assert {r["source"] for r in resp.json()["results"]} == set(filtered_corpus["redis"][:3])
    meta = admin.post(
        "/v1/indexes/filtered/search",
        json={
            "query": "anything",
            "top_k": 10,
            "filters": {"metadata": {"topic": "postgres", "n": 4}},
        },
    ).json()["results"]
    assert [r["source"] for r in meta] == [filtered_corpus["postgres"][4]]


def test_ef_search_per_request_and_validation(
    admin: httpx.Client, filtered_corpus: dict[str, list[str]]
) -> None:
    ok = admin.post(
        "/v1/indexes/filtered/search",
        json={"query": "postgres graph", "top_k": 3, "ef_search": 200},
    )
    assert ok.status_code == 200 and len(ok.json()["results"]) == 3
    bad = admin.post("/v1/indexes/filtered/search", json={"query": "x", "ef_search": 5000})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    assert "ef_search" in bad.json()["error"]["message"]
    empty = admin.post("/v1/indexes/filtered/search", json={"query": ""})
    assert empty.status_code == 422


def test_hybrid_full_text_finds_exact_rare_terms(admin: httpx.Client) -> None:
    token = f"zx{uuid.uuid4().hex[:10]}"
    admin.post(
        "/v1/indexes/docs/documents",
        json={
            "source": f"{token}.txt",
            "content": f"The error code {token} means the disk is full.",
        },
    )
    results = admin.post("/v1/indexes/docs/search", json={"query": token, "top_k": 3}).json()[
        "results"
    ]
    # Full text ranks the exact term first. RRF can tie it with the vector list's first hit
    # (other tests fill this shared index with many identical chunks), so: top two.
    assert f"{token}.txt" in [r["source"] for r in results[:2]]


def test_search_with_remote_embedding_pool(admin: httpx.Client, provider_state: object) -> None:
    resp = admin.post(
        "/v1/indexes/remote/documents",
        json={"source": "r.txt", "content": "Remote embeddings work."},
    )
    assert resp.status_code in (200, 201), resp.text
    results = admin.post(
        "/v1/indexes/remote/search", json={"query": "Remote embeddings work."}
    ).json()["results"]
    assert results[0]["source"] == "r.txt"


def _embedding_calls(p: ProviderServer) -> list[dict[str, object]]:
    return [c for c in p.state.calls if c["endpoint"] == "embeddings"]


def test_embedding_pool_retries_then_falls_through(
    admin: httpx.Client, provider_state: ProviderServer
) -> None:
    # testemb: 3 attempts, all failing; then testemb-b answers.
    provider_state.state.inject(
        "embeddings", Fault("500"), Fault("reset"), Fault("429", seconds=0.1)
    )
    resp = admin.post(
        "/v1/indexes/remote/documents", json={"source": "fall.txt", "content": "Falls through."}
    )
    assert resp.status_code == 201, resp.text
    assert len(_embedding_calls(provider_state)) == 4


def test_embedding_pool_all_failing_is_503_and_writes_nothing(
    admin: httpx.Client, provider_state: ProviderServer
) -> None:
    provider_state.state.inject("embeddings", *[Fault("500")] * 4)
    resp = admin.post(
        "/v1/indexes/remote/documents", json={"source": "none.txt", "content": "Never stored."}
    )
    assert resp.status_code == 503
    err = resp.json()["error"]
    assert err["code"] == "dependency_unavailable"
    assert "testemb: server_error" in err["message"] and "testemb-b: server_error" in err["message"]
    listed = admin.get("/v1/indexes/remote/documents").json()["documents"]
    assert "none.txt" not in {d["source"] for d in listed}
    # a 400 is not retried: one call per provider
    provider_state.state.reset()
    provider_state.state.inject("embeddings", Fault("400"), Fault("400"))
    assert admin.post("/v1/indexes/remote/search", json={"query": "q"}).status_code == 503
    assert len(_embedding_calls(provider_state)) == 2
