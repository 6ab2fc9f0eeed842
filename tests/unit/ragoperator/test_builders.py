"""Pure builders and status decisions of the operator."""

from __future__ import annotations

from decimal import Decimal

import yaml

from ragapi.budget_keys import Spend
from ragapi.contract import InferencePoolSpec, ProviderBudgetSpec, RagIndexSpec
from ragapi.routing import parse_routing
from ragoperator import conditions as cond
from ragoperator.budgets import budget_status
from ragoperator.builders import (
    Owner,
    SecretRef,
    index_build_job,
    index_build_job_name,
    pool_children,
    routing_document,
)

OWNER = Owner("RagIndex", "docs", "uid-1")


def test_build_job_is_deterministic_per_hnsw_params() -> None:
    spec = RagIndexSpec()
    job = index_build_job(
        "docs", "ns", spec, owner=OWNER, image="img:1", database=SecretRef("db", "url")
    )
    again = index_build_job(
        "docs", "ns", spec, owner=OWNER, image="img:1", database=SecretRef("db", "url")
    )
    assert job == again
    assert job["metadata"]["name"] == index_build_job_name("docs", spec)
    other = RagIndexSpec.model_validate({"hnsw": {"m": 24, "efConstruction": 96}})
    assert index_build_job_name("docs", other) != job["metadata"]["name"]
    # efSearch is a query-time knob: it must not trigger a rebuild.
    assert (
        index_build_job_name("docs", RagIndexSpec.model_validate({"hnsw": {"efSearch": 200}}))
        == job["metadata"]["name"]
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["index", "build", "docs"]
    assert container["env"][0]["valueFrom"] == {"secretKeyRef": {"name": "db", "key": "url"}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert job["metadata"]["ownerReferences"] == [OWNER.reference()]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_long_index_names_still_make_valid_unique_job_names() -> None:
    long = "a" * 63
    name = index_build_job_name(long, RagIndexSpec())
    assert len(name) <= 63 and not name.endswith("-")
    assert name.rsplit("-", 1)[1] == index_build_job_name("x", RagIndexSpec()).rsplit("-", 1)[1]


POOL = {
    "purpose": "chat",
    "providers": [
        {"name": "vllm", "type": "openai", "baseURL": "http://vllm:8000/v1", "model": "m"}
    ],
    "deployment": {
        "image": "vllm/vllm-openai:v0.9",
        "args": ["--model", "m"],
        "port": 8000,
        "resources": {"limits": {"cpu": "4"}},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70},
    },
}


def test_pool_children_with_autoscaling() -> None:
    children = pool_children(
        "local",
        "ns",
        InferencePoolSpec.model_validate(POOL),
        owner=Owner("InferencePool", "local", "u"),
    )
    kinds = [c["kind"] for c in children]
    assert kinds == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    dep, svc, hpa, pdb = children
    assert "replicas" not in dep["spec"]  # the HPA owns the replica count
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"] == ["--model", "m"]
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 5
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    assert pdb["spec"] == {"selector": dep["spec"]["selector"], "minAvailable": 1}
    assert all(c["metadata"]["ownerReferences"][0]["kind"] == "InferencePool" for c in children)


def test_pool_without_deployment_has_no_children_and_single_replica_pdb() -> None:
    assert (
        pool_children(
            "p", "ns", InferencePoolSpec.model_validate({**POOL, "deployment": None}), owner=OWNER
        )
        == []
    )
    one = {**POOL, "deployment": {"image": "i", "replicas": 1}}
    children = pool_children("p", "ns", InferencePoolSpec.model_validate(one), owner=OWNER)
    assert [c["kind"] for c in children] == ["Deployment", "Service", "PodDisruptionBudget"]
    assert children[0]["spec"]["replicas"] == 1
    assert children[-1]["spec"]["maxUnavailable"] == 1


def test_routing_document_is_stable_and_parses_back() -> None:
    resources = [
        {
            "kind": "RagIndex",
            "metadata": {"name": "b", "uid": "x", "resourceVersion": "9"},
            "spec": {"distance": "l2"},
            "status": {"phase": "Ready"},
        },
        {
            "kind": "InferencePool",
            "metadata": {"name": "default"},
            "spec": {"purpose": "chat", "providers": [{"name": "e", "type": "extractive"}]},
        },
        {"kind": "RagIndex", "metadata": {"name": "a"}, "spec": {}},
        {
            "kind": "RagIndex",
            "metadata": {"name": "gone", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {},
        },
    ]
    text = routing_document(resources)
    assert text == routing_document(list(reversed(resources)))
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("InferencePool", "default"),
        ("RagIndex", "a"),
        ("RagIndex", "b"),
    ]
    assert all(set(d) == {"apiVersion", "kind", "metadata", "spec"} for d in docs)
    assert all(d["metadata"] == {"name": d["metadata"]["name"]} for d in docs)
    routing = parse_routing(text)
    assert sorted(routing.indexes) == ["a", "b"]


def test_budget_status_states_and_thresholds() -> None:
    spec = ProviderBudgetSpec.model_validate(
        {
            "poolRef": {"name": "default"},
            "provider": "openai",
            "limit": {"usd": "10.00", "requests": 1000},
        }
    )
    ok = budget_status(spec, Spend(Decimal("1.5"), 0, 100), "2026-12-01T00:00:00Z")
    assert (ok.state, ok.percent, ok.crossed) == ("Ok", 15.0, None)
    assert ok.status["remaining"] == {"usd": "8.500000", "requests": 900}
    warn = budget_status(spec, Spend(Decimal("8.2"), 0, 100), "p")
    assert (warn.state, warn.crossed) == ("Warning", 80)
    done = budget_status(spec, Spend(Decimal("3"), 0, 1000), "p")
    assert (done.state, done.crossed) == ("Exhausted", 100)
    assert done.status["remaining"]["requests"] == 0


def test_conditions_keep_transition_time_when_status_is_unchanged() -> None:
    first = cond.set_condition([], cond.condition("Ready", "True", "A", "m", 1))
    stamp = first[0]["lastTransitionTime"]
    again = cond.set_condition(
        [{**first[0], "lastTransitionTime": "2020-01-01T00:00:00Z"}],
        cond.condition("Ready", "True", "B", "m2", 2),
    )
    assert again[0]["lastTransitionTime"] == "2020-01-01T00:00:00Z" and again[0]["reason"] == "B"
    flipped = cond.set_condition(first, cond.condition("Ready", "False", "C", "m", 2))
    assert flipped[0]["status"] == "False" and flipped[0]["lastTransitionTime"] >= stamp
    assert cond.is_true(first, "Ready") and not cond.is_true(flipped, "Ready")
