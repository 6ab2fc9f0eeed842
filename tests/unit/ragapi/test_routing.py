"""The routing file: the custom resources as YAML, validated with the contract models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ragapi.contract import Distance, ProviderType
from ragapi.routing import BUILTIN_DEFAULT_POOL, RoutingError, RoutingWatcher, parse_routing

EXAMPLE = """
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {name: default}
spec:
  purpose: chat
  providers:
    - {name: fallback, type: extractive, priority: 9}
    - {name: openai, type: openai, baseURL: "http://127.0.0.1:1/v1", model: m, priority: 1,
       apiKeySecretRef: {name: openai, key: apiKey}, timeoutSeconds: 30}
  circuitBreaker: {failureThreshold: 5, cooldownSeconds: 60}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {name: handbook}
spec:
  distance: l2
  hnsw: {m: 24, efConstruction: 96}
---
apiVersion: ragline.dev/v1alpha1
kind: ProviderBudget
metadata: {name: openai-monthly}
spec:
  poolRef: {name: default}
  provider: openai
  limit: {usd: "200.00"}
  pricing: [{model: m, inputPer1M: "0.15", outputPer1M: "0.60"}]
"""


def test_parses_all_three_kinds_with_defaults() -> None:
    r = parse_routing(EXAMPLE)
    index = r.indexes["handbook"]
    assert index.distance is Distance.L2
    assert (index.hnsw.m, index.hnsw.ef_construction, index.hnsw.ef_search) == (24, 96, 40)
    assert index.embedding.dimensions == 384 and index.chunking.max_tokens == 200
    pool = r.chat_pool(index)
    assert [p.name for p in pool.ordered()] == ["openai", "fallback"]
    assert pool.providers[1].type is ProviderType.OPENAI
    assert str(r.budgets["openai-monthly"].limit.usd) == "200.00"


def test_missing_default_pool_means_extractive() -> None:
    r = parse_routing("apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: a}\n")
    assert r.chat_pool(r.indexes["a"]) is BUILTIN_DEFAULT_POOL


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            "apiVersion: v1\nkind: RagIndex\nmetadata: {name: a}\n",
            "apiVersion must be ragline.dev/v1alpha1",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: Bad_Name}\n",
            "DNS-1123",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: Widget\nmetadata: {name: a}\n",
            "unknown kind 'Widget'",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: a}\nspec: {hnsw: {m: 1}}\n",
            "RagIndex/a: spec.hnsw.m",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: a}\nspec: {hnsw: {m: 40, efConstruction: 64}}\n",
            "efConstruction must be at least 2 * m",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: a}\n"
            "spec: {chunking: {maxTokens: 100, overlapTokens: 60}}\n",
            "less than half",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: a}\nspec: {colour: red}\n",
            "spec.colour",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: InferencePool\nmetadata: {name: p}\n"
            "spec: {purpose: chat, providers: [{name: x, type: openai}]}\n",
            "needs baseURL and model",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: a}\n"
            "spec: {answer: {poolRef: {name: missing}}}\n",
            "chat pool 'missing' is not defined",
        ),
        (
            "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: a}\n"
            "spec: {embedding: {poolRef: {name: default}}}\n",
            "embedding pool 'default' is not defined",
        ),
        (": : :", "not valid YAML"),
    ],
)
def test_invalid_documents_name_the_problem(doc: str, message: str) -> None:
    with pytest.raises(RoutingError) as info:
        parse_routing(doc)
    assert message in str(info.value)


def test_watcher_reloads_on_change_and_keeps_last_good(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: a}\n")
    seen: list[list[str]] = []

    async def on_change(r: object) -> None:
        seen.append(sorted(r.indexes))  # type: ignore[attr-defined]

    async def run() -> None:
        w = RoutingWatcher(path, on_change)
        assert await w.refresh() is True and w.loaded
        assert await w.refresh() is False  # unchanged
        path.write_text(
            path.read_text() + "---\napiVersion: ragline.dev/v1alpha1\nkind: RagIndex\n"
            "metadata: {name: b}\n"
        )
        assert await w.refresh() is True
        path.write_text("kind: [broken")
        assert await w.refresh() is False
        assert sorted(w.current.indexes) == ["a", "b"] and w.last_error is not None

    asyncio.run(run())
    assert seen == [["a"], ["a", "b"]]


def test_examples_parse() -> None:
    for path in sorted(Path("examples").glob("*.yaml")):
        parse_routing(path.read_text())
