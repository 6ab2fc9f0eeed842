"""The generated CRDs on a real kube-apiserver, driven with the real kubectl."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from ragapi.contract import API_VERSION, SPEC_MODELS
from tests.cluster.conftest import CRD_NAMES, Cluster

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
NS = "crd-test"
PLURAL = {
    "RagIndex": "ragindexes",
    "InferencePool": "inferencepools",
    "ProviderBudget": "providerbudgets",
}


@pytest.fixture(scope="module")
def k(cluster: Cluster, crds_applied: tuple[str, ...]) -> Cluster:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(namespace))
    return cluster


def manifest(kind: str, name: str, spec: dict[str, Any] | None) -> dict[str, Any]:
    m: dict[str, Any] = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}}
    if spec is not None:
        m["spec"] = spec
    return m


def apply(
    k: Cluster, *docs: dict[str, Any], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return k.kubectl(
        "apply",
        "--server-side",
        "-n",
        NS,
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        check=check,
    )


def get(k: Cluster, kind: str, name: str) -> dict[str, Any]:
    out = k.kubectl("get", PLURAL[kind], name, "-n", NS, "-o", "json")
    obj: dict[str, Any] = json.loads(out.stdout)
    return obj


def exists(k: Cluster, kind: str, name: str) -> bool:
    out = k.kubectl("get", PLURAL[kind], name, "-n", NS, "--ignore-not-found", "-o", "name")
    return bool(out.stdout.strip())


def pruned(value: Any) -> Any:
    """A pydantic dump as the API server stores it: no nulls, no empty lists or objects."""
    if isinstance(value, dict):
        out = {k: pruned(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [pruned(v) for v in value]
    return value


def model_dump(model: BaseModel) -> Any:
    return pruned(model.model_dump(by_alias=True, mode="json"))


# ---------------------------------------------------------------- install


def test_crds_established_with_names(k: Cluster) -> None:
    for name in CRD_NAMES:
        crd = json.loads(k.kubectl("get", "crd", name, "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True", crd["status"]
        assert conditions["NamesAccepted"] == "True", crd["status"]
        assert crd["spec"]["names"]["categories"] == ["ragline"]
    # Every kind answers to its plural, singular and short name (kubectl fails otherwise).
    for resource in ("ragindexes", "ragindex", "ri", "inferencepools", "ipool", "pb"):
        k.kubectl("get", resource, "-n", NS)


# ---------------------------------------------------------------- valid objects, defaults

VALID: dict[str, dict[str, Any]] = {
    "RagIndex": {},
    "InferencePool": {
        "purpose": "chat",
        "providers": [
            {
                "name": "openai",
                "type": "openai",
                "baseURL": "https://api.example/v1",
                "model": "gpt-4o-mini",
                "apiKeySecretRef": {"name": "openai", "key": "apiKey"},
                "priority": 1,
                "timeoutSeconds": 30,
            },
            {"name": "fallback", "type": "extractive", "priority": 9},
        ],
        "deployment": {"image": "vllm/vllm-openai:v0.6.0", "autoscaling": {"maxReplicas": 4}},
    },
    "ProviderBudget": {
        "poolRef": {"name": "default"},
        "provider": "openai",
        "limit": {"usd": "200.00"},
        "pricing": [{"model": "gpt-4o-mini", "inputPer1M": "0.15", "outputPer1M": "0.60"}],
    },
}

SERVER_DEFAULTS: dict[str, dict[tuple[str | int, ...], Any]] = {
    "RagIndex": {
        ("hnsw", "m"): 16,
        ("hnsw", "efConstruction"): 256,
        ("hnsw", "efSearch"): 40,
        ("embedding", "dimensions"): 384,
        ("chunking", "maxTokens"): 200,
        ("distance",): "cosine",
        ("search", "hybrid"): True,
        ("deletionPolicy",): "Retain",
    },
    "InferencePool": {
        ("circuitBreaker", "failureThreshold"): 5,
        ("providers", 1, "maxRetries"): 2,
        ("providers", 1, "timeoutSeconds"): 30,
        ("deployment", "port"): 8000,
        ("deployment", "autoscaling", "minReplicas"): 1,
        ("deployment", "autoscaling", "targetCPUUtilizationPercentage"): 80,
    },
    "ProviderBudget": {
        ("period",): "monthly",
        ("onExhausted",): "fallback",
        ("alertThresholds",): [50, 80, 100],
        ("limit", "usd"): "200.00",
    },
}


@pytest.mark.parametrize("kind", list(VALID))
def test_valid_object_is_defaulted_like_the_model(k: Cluster, kind: str) -> None:
    name = f"valid-{kind.lower()}"
    apply(k, manifest(kind, name, VALID[kind]))
    spec = get(k, kind, name)["spec"]
    for path, expected in SERVER_DEFAULTS[kind].items():
        value: Any = spec
        for step in path:
            value = value[step]
        assert value == expected, (path, spec)
    # The server's defaulting and the model's agree on every field.
    model = SPEC_MODELS[kind]
    assert spec == model_dump(model.model_validate(VALID[kind]))
    assert model.model_validate(spec) == model.model_validate(VALID[kind])


def test_ragindex_without_spec_gets_a_defaulted_spec(k: Cluster) -> None:
    apply(k, manifest("RagIndex", "no-spec", None))
    spec = get(k, "RagIndex", "no-spec")["spec"]
    assert spec["hnsw"] == {"m": 16, "efConstruction": 256, "efSearch": 40}
    assert spec == model_dump(SPEC_MODELS["RagIndex"]())


# ---------------------------------------------------------------- rejected objects

DEFAULT_POOL = {"purpose": "chat", "providers": [{"name": "x", "type": "extractive"}]}
BUDGET = {"poolRef": {"name": "default"}, "provider": "openai"}

# (id, kind, spec, stderr substring, pydantic rejects it too)
INVALID: list[tuple[str, str, dict[str, Any], str, bool]] = [
    (
        "overlap-too-large",
        "RagIndex",
        {"chunking": {"maxTokens": 100, "overlapTokens": 50}},
        "spec.chunking: Invalid value: chunking.overlapTokens must be less than half of maxTokens",
        True,
    ),
    (
        "overlap-against-default-max",
        "RagIndex",
        {"chunking": {"overlapTokens": 100}},
        "chunking.overlapTokens must be less than half of maxTokens",
        True,
    ),
    (
        "ef-construction-below-2m",
        "RagIndex",
        {"hnsw": {"m": 48, "efConstruction": 64}},
        "spec.hnsw: Invalid value: hnsw.efConstruction must be at least 2 * m",
        True,
    ),
    (
        "distance-enum",
        "RagIndex",
        {"distance": "manhattan"},
        'spec.distance: Unsupported value: "manhattan": supported values: "cosine", "l2", "innerProduct"',
        True,
    ),
    (
        "hnsw-m-bound",
        "RagIndex",
        {"hnsw": {"m": 1}},
        "spec.hnsw.m in body should be greater than or equal to 2",
        True,
    ),
    (
        "pool-ref-name-pattern",
        "RagIndex",
        {"answer": {"poolRef": {"name": "Bad_Pool"}}},
        "spec.answer.poolRef.name in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
        True,
    ),
    (
        "unknown-field",
        "RagIndex",
        {"hnsw": {"mm": 16}},
        ".spec.hnsw.mm: field not declared in schema",
        True,
    ),
    (
        "openai-without-base-url",
        "InferencePool",
        {"purpose": "chat", "providers": [{"name": "o", "type": "openai", "model": "m"}]},
        "spec.providers[0]: Invalid value: a provider of type openai needs baseURL and model",
        True,
    ),
    (
        "openai-with-empty-model",
        "InferencePool",
        {
            "purpose": "chat",
            "providers": [{"name": "o", "type": "openai", "baseURL": "http://x/v1", "model": ""}],
        },
        "a provider of type openai needs baseURL and model",
        True,
    ),
    (
        "duplicate-provider-names",
        "InferencePool",
        {
            "purpose": "chat",
            "providers": [{"name": "a", "type": "extractive"}, {"name": "a", "type": "local"}],
        },
        "spec: Invalid value: providers[].name must be unique within a pool",
        True,
    ),
    (
        "no-providers",
        "InferencePool",
        {"purpose": "chat", "providers": []},
        "spec.providers in body should have at least 1 items",
        True,
    ),
    (
        "timeout-zero",
        "InferencePool",
        {
            "purpose": "chat",
            "providers": [{"name": "a", "type": "extractive", "timeoutSeconds": 0}],
        },
        "spec.providers[0].timeoutSeconds in body should be greater than 0",
        True,
    ),
    (
        "autoscaling-min-above-max",
        "InferencePool",
        {
            **DEFAULT_POOL,
            "deployment": {"image": "x", "autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        },
        "spec.deployment.autoscaling: Invalid value: autoscaling.minReplicas must not exceed maxReplicas",
        False,
    ),
    (
        "usd-not-decimal",
        "ProviderBudget",
        {**BUDGET, "limit": {"usd": "abc"}},
        """spec.limit.usd: Invalid value: "abc": spec.limit.usd in body should match '^\\d+(\\.\\d+)?$'""",
        True,
    ),
    (
        "price-negative",
        "ProviderBudget",
        {**BUDGET, "pricing": [{"model": "m", "inputPer1M": "-1", "outputPer1M": "1"}]},
        "spec.pricing[0].inputPer1M in body should match",
        True,
    ),
    (
        "alert-threshold-above-100",
        "ProviderBudget",
        {**BUDGET, "alertThresholds": [50, 150]},
        "spec.alertThresholds[1]: Invalid value: 150: alertThresholds are percentages of the limit:"
        " each must be between 1 and 100",
        False,
    ),
    (
        "period-enum",
        "ProviderBudget",
        {**BUDGET, "period": "weekly"},
        'spec.period: Unsupported value: "weekly"',
        True,
    ),
]


@pytest.mark.parametrize(
    ("kind", "spec", "message", "model_rejects"),
    [pytest.param(*case[1:], id=case[0]) for case in INVALID],
)
def test_invalid_object_is_rejected_with_the_rules_message(
    k: Cluster,
    request: pytest.FixtureRequest,
    kind: str,
    spec: dict[str, Any],
    message: str,
    model_rejects: bool,
) -> None:
    name = request.node.callspec.id
    out = apply(k, manifest(kind, name, spec), check=False)
    assert out.returncode != 0, out.stdout
    assert message in out.stderr
    assert not exists(k, kind, name)
    if model_rejects:  # the CRD mirrors the contract
        with pytest.raises(ValidationError):
            SPEC_MODELS[kind].model_validate(spec)


def test_missing_required_spec_is_rejected(k: Cluster) -> None:
    out = apply(k, manifest("InferencePool", "no-spec", None), check=False)
    assert out.returncode != 0
    assert "spec: Required value" in out.stderr


def test_name_must_be_a_dns_label(k: Cluster) -> None:
    out = apply(k, manifest("RagIndex", "a.b", {}), check=False)
    assert out.returncode != 0
    assert "metadata.name must be a DNS-1123 label" in out.stderr


def test_embedding_dimensions_are_immutable(k: Cluster) -> None:
    apply(k, manifest("RagIndex", "dims", {"embedding": {"dimensions": 384}}))
    changed = manifest("RagIndex", "dims", {"embedding": {"dimensions": 768}, "hnsw": {"m": 8}})
    out = apply(k, changed, check=False)
    assert out.returncode != 0
    assert (
        "spec.embedding.dimensions: Invalid value: 768: embedding.dimensions is immutable:"
        " the vector column has a fixed size; create a new RagIndex to change it"
    ) in out.stderr
    patch = k.kubectl(
        "patch",
        "ragindex",
        "dims",
        "-n",
        NS,
        "--type=merge",
        "-p",
        '{"spec": {"embedding": {"dimensions": 1024}}}',
        check=False,
    )
    assert patch.returncode != 0
    assert "create a new RagIndex to change it" in patch.stderr
    assert get(k, "RagIndex", "dims")["spec"]["embedding"]["dimensions"] == 384
    # Everything else stays mutable: a new HNSW setting is accepted.
    apply(k, manifest("RagIndex", "dims", {"embedding": {"dimensions": 384}, "hnsw": {"m": 8}}))
    assert get(k, "RagIndex", "dims")["spec"]["hnsw"]["m"] == 8


# ---------------------------------------------------------------- status, columns, delete

CONDITION = {
    "type": "Ready",
    "status": "True",
    "reason": "IndexBuilt",
    "message": "HNSW index ready",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
    "observedGeneration": 1,
}


def patch_status(
    k: Cluster, kind: str, name: str, status: dict[str, Any], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return k.kubectl(
        "patch",
        PLURAL[kind],
        name,
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
        check=check,
    )


def test_status_subresource_and_printer_columns(k: Cluster) -> None:
    apply(
        k,
        manifest("RagIndex", "handbook", {}),
        manifest("InferencePool", "default", DEFAULT_POOL),
        manifest("ProviderBudget", "openai-monthly", {**BUDGET, "limit": {"usd": "200.00"}}),
    )
    patch_status(
        k,
        "RagIndex",
        "handbook",
        {
            "observedGeneration": 1,
            "phase": "Ready",
            "documents": 3,
            "chunks": 42,
            "conditions": [CONDITION],
            "index": {
                "name": "handbook_hnsw_1",
                "params": {"m": 16, "efConstruction": 64},
                "builtAt": "2026-01-01T00:00:00Z",
                "buildSeconds": 1.5,
            },
        },
    )
    patch_status(
        k,
        "InferencePool",
        "default",
        {
            "readyReplicas": 2,
            "providers": [{"name": "x", "healthy": True}],
        },
    )
    patch_status(
        k,
        "ProviderBudget",
        "openai-monthly",
        {
            "state": "Warning",
            "spent": {"usd": "120.50", "tokens": 1000, "requests": 7},
            "remaining": {"usd": "-0.25"},
            "periodEnd": "2026-02-01T00:00:00Z",
            "lastAlertThreshold": 50,
        },
    )

    status = get(k, "RagIndex", "handbook")["status"]
    assert status["phase"] == "Ready" and status["chunks"] == 42
    assert status["conditions"][0]["reason"] == "IndexBuilt"
    assert status["index"]["params"] == {"m": 16, "efConstruction": 64}

    for resource in ("ragindexes", "ri"):
        lines = k.kubectl("get", resource, "handbook", "-n", NS).stdout.splitlines()
        assert lines[0].split() == ["NAME", "PHASE", "CHUNKS", "DOCUMENTS", "AGE"]
        assert lines[1].split()[:4] == ["handbook", "Ready", "42", "3"]
    lines = k.kubectl("get", "ipool", "default", "-n", NS).stdout.splitlines()
    assert lines[0].split() == ["NAME", "PURPOSE", "READY", "AGE"]
    assert lines[1].split()[:3] == ["default", "chat", "2"]
    lines = k.kubectl("get", "pb", "openai-monthly", "-n", NS).stdout.splitlines()
    assert lines[0].split() == ["NAME", "PROVIDER", "PERIOD", "STATE", "SPENT", "AGE"]
    assert lines[1].split()[:5] == ["openai-monthly", "openai", "monthly", "Warning", "120.50"]
    # The category lists all three kinds.
    listed = k.kubectl("get", "ragline", "-n", NS, "-o", "name").stdout.split()
    assert "ragindex.ragline.dev/handbook" in listed
    assert "inferencepool.ragline.dev/default" in listed
    assert "providerbudget.ragline.dev/openai-monthly" in listed


def test_status_is_only_written_through_the_subresource(k: Cluster) -> None:
    apply(k, manifest("RagIndex", "guarded", {}))
    patch_status(k, "RagIndex", "guarded", {"phase": "Building"})
    k.kubectl(
        "patch",
        "ragindex",
        "guarded",
        "-n",
        NS,
        "--type=merge",
        "-p",
        '{"status": {"phase": "Failed"}}',
    )
    assert get(k, "RagIndex", "guarded")["status"]["phase"] == "Building"
    # The status schema is enforced too.
    out = patch_status(k, "RagIndex", "guarded", {"phase": "Exploded"}, check=False)
    assert out.returncode != 0
    assert 'status.phase: Unsupported value: "Exploded"' in out.stderr
    out = patch_status(
        k, "RagIndex", "guarded", {"conditions": [{"type": "Ready", "status": "True"}]}, check=False
    )
    assert out.returncode != 0
    assert "status.conditions[0].reason: Required value" in out.stderr


def test_delete_removes_objects(k: Cluster) -> None:
    apply(
        k,
        manifest("RagIndex", "doomed", {}),
        manifest("InferencePool", "doomed", DEFAULT_POOL),
        manifest("ProviderBudget", "doomed", BUDGET),
    )
    for kind in PLURAL:
        assert exists(k, kind, "doomed")
        k.kubectl("delete", PLURAL[kind], "doomed", "-n", NS, "--timeout=30s")
        assert not exists(k, kind, "doomed")
    out = k.kubectl("get", "ragindex", "doomed", "-n", NS, check=False)
    assert out.returncode != 0 and "NotFound" in out.stderr


def test_examples_are_accepted_by_the_server(k: Cluster) -> None:
    """Every custom resource in examples/*.yaml passes the CRDs (server-side dry run)."""
    for path in sorted((REPO / "examples").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        ours = [d for d in docs if d.get("apiVersion") == API_VERSION]
        if not ours:
            continue
        out = k.kubectl(
            "apply",
            "--server-side",
            "--dry-run=server",
            "-n",
            NS,
            "-f",
            "-",
            input=yaml.safe_dump_all(ours),
            check=False,
        )
        assert out.returncode == 0, f"{path.relative_to(REPO)}:\n{out.stderr}"
