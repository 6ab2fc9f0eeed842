"""The operator against a real kube-apiserver, real Postgres and Redis.

No pod runs here, so a test that needs a Job's effect runs the Job's command itself from
the spec the operator wrote, then marks the Job complete through the API.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
import yaml

from ragapi.budget_keys import SPENT_REQUESTS, SPENT_USD_MICROS, counters_key
from ragapi.contract import Period
from ragapi.embedded import EmbeddedStack, free_port
from tests.cluster.conftest import REPO, Cluster
from tests.support import operator as support
from tests.support.operator import Operator

pytestmark = pytest.mark.cluster
NS = "ragline-test"
RAGLINE = str(Path(sys.executable).parent / "ragline")


@pytest.fixture(scope="module")
def namespace(cluster: Cluster, crds_applied: object, stack: EmbeddedStack) -> str:
    cluster.kubectl("create", "namespace", NS)
    cluster.kubectl(
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "ragline-db",
        f"--from-literal=databaseUrl={stack.postgres.url}",
    )
    return NS


@pytest.fixture(scope="module")
def operator(
    cluster: Cluster, namespace: str, stack: EmbeddedStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    op = Operator(cluster, stack, NS, tmp_path_factory.mktemp("operator") / "operator.log")
    op.start()
    try:
        yield op
    finally:
        op.stop()


def get(cluster: Cluster, kind: str, name: str) -> dict[str, Any]:
    return support.get(cluster, NS, kind, name)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60) -> Any:
    return support.wait_for(what, probe, timeout)


def apply(cluster: Cluster, doc: dict[str, Any] | str) -> None:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    cluster.kubectl("-n", NS, "apply", "--server-side", "-f", "-", input=text)


def run_job_and_complete(cluster: Cluster, job_name: str) -> None:
    support.run_job_and_complete(cluster, NS, job_name)


def jobs_for(cluster: Cluster, index: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("-n", NS, "get", "jobs", "-l", f"ragline.dev/index={index}", "-o", "json")
    return list(json.loads(out.stdout)["items"])


def table_exists(stack: EmbeddedStack, table: str) -> bool:
    async def run() -> bool:
        conn = await asyncpg.connect(stack.postgres.url)
        try:
            return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))
        finally:
            await conn.close()

    return asyncio.run(run())


def phase(cluster: Cluster, name: str) -> str | None:
    return get(cluster, "ragindex", name).get("status", {}).get("phase")


def test_ragindex_build_ready_rebuild_and_delete(
    cluster: Cluster, operator: Operator, stack: EmbeddedStack
) -> None:
    index = {
        "apiVersion": "ragline.dev/v1alpha1",
        "kind": "RagIndex",
        "metadata": {"name": "manual"},
        "spec": {"deletionPolicy": "Delete"},
    }
    apply(cluster, index)
    wait_for("phase Building", lambda: phase(cluster, "manual") == "Building")
    jobs = jobs_for(cluster, "manual")
    assert len(jobs) == 1
    job = jobs[0]
    assert job["metadata"]["ownerReferences"][0]["kind"] == "RagIndex"
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "ragline:test"
    assert table_exists(stack, "chunks_manual")  # tables ensured before the build

    run_job_and_complete(cluster, job["metadata"]["name"])
    ready = wait_for(
        "phase Ready",
        lambda: phase(cluster, "manual") == "Ready" and get(cluster, "ragindex", "manual"),
    )
    status = ready["status"]
    assert status["observedGeneration"] == ready["metadata"]["generation"]
    assert status["index"]["name"] == "chunks_manual_hnsw_cosine_m16_ef256"
    assert status["index"]["params"] == {"m": 16, "efConstruction": 256, "distance": "cosine"}
    assert status["chunks"] == 0 and status["documents"] == 0
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["IndexBuilt"]["status"] == "True"
    events = cluster.kubectl(
        "-n", NS, "get", "events", "--field-selector", "involvedObject.name=manual", "-o", "json"
    ).stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"IndexBuildStarted", "IndexBuilt"} <= reasons

    routing = get(cluster, "configmap", "ragline-routing")["data"]["routing.yaml"]
    docs = [d for d in yaml.safe_load_all(routing) if d]
    assert {
        "apiVersion": "ragline.dev/v1alpha1",
        "kind": "RagIndex",
        "metadata": {"name": "manual"},
    }.items() <= next(d for d in docs if d["metadata"]["name"] == "manual").items()

    # New HNSW parameters: a second Job beside the first; the index stays searchable.
    index["spec"]["hnsw"] = {"m": 8, "efConstruction": 32}
    apply(cluster, index)
    wait_for("rebuild Job", lambda: len(jobs_for(cluster, "manual")) == 2)
    rebuilding = get(cluster, "ragindex", "manual")["status"]
    assert rebuilding["phase"] == "Building"
    assert {c["type"]: c["reason"] for c in rebuilding["conditions"]}["Ready"] == "Rebuilding"
    new_job = next(
        j for j in jobs_for(cluster, "manual") if j["metadata"]["name"] != job["metadata"]["name"]
    )
    run_job_and_complete(cluster, new_job["metadata"]["name"])
    wait_for(
        "rebuilt",
        lambda: (
            get(cluster, "ragindex", "manual").get("status", {}).get("index", {}).get("name")
            == "chunks_manual_hnsw_cosine_m8_ef32"
        ),
    )

    # deletionPolicy Delete: the finalizer drops the data, then the object goes.
    cluster.kubectl("-n", NS, "delete", "ragindex", "manual", "--wait=true", "--timeout=60s")
    assert not table_exists(stack, "chunks_manual")
    wait_for(
        "routing without the index",
        lambda: (
            "manual" not in get(cluster, "configmap", "ragline-routing")["data"]["routing.yaml"]
        ),
    )


def test_reconciling_again_changes_nothing_and_restart_makes_no_duplicate(
    cluster: Cluster, operator: Operator
) -> None:
    apply(
        cluster,
        {
            "apiVersion": "ragline.dev/v1alpha1",
            "kind": "RagIndex",
            "metadata": {"name": "steady"},
            "spec": {},
        },
    )
    wait_for("Building", lambda: phase(cluster, "steady") == "Building")
    # Kill the operator mid-build (no graceful shutdown) and start it again.
    operator.kill()
    operator.start()
    time.sleep(6)  # resume handlers and several timer rounds
    assert len(jobs_for(cluster, "steady")) == 1
    job = jobs_for(cluster, "steady")[0]["metadata"]["name"]
    run_job_and_complete(cluster, job)
    wait_for("Ready", lambda: phase(cluster, "steady") == "Ready")
    time.sleep(2)

    def versions() -> dict[str, str]:
        return {
            k: get(cluster, k, n)["metadata"]["resourceVersion"]
            for k, n in (("ragindex", "steady"), ("job", job), ("configmap", "ragline-routing"))
        }

    before = versions()
    operator.stop()
    operator.start()
    time.sleep(6)
    assert versions() == before


def test_missing_secret_is_a_condition_not_a_crash(cluster: Cluster, operator: Operator) -> None:
    apply(
        cluster,
        {
            "apiVersion": "ragline.dev/v1alpha1",
            "kind": "RagIndex",
            "metadata": {"name": "nosecret"},
            "spec": {"database": {"secretRef": {"name": "absent", "key": "dsn"}}},
        },
    )

    def ready_condition() -> dict[str, Any] | None:
        conds = get(cluster, "ragindex", "nosecret").get("status", {}).get("conditions", [])
        return next(
            (c for c in conds if c["type"] == "Ready" and c["reason"] == "SecretMissing"), None
        )

    cond = wait_for("SecretMissing condition", ready_condition)
    assert cond["status"] == "False" and "'absent'" in cond["message"]
    assert operator.proc is not None and operator.proc.poll() is None
    # Creating the Secret heals it on the next retry (no restart, no edit of the RagIndex).
    secret = get(cluster, "secret", "ragline-db")["data"]["databaseUrl"]
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "absent"},
            "data": {"dsn": secret},
        },
    )
    wait_for(
        "Building after the Secret appears",
        lambda: phase(cluster, "nosecret") == "Building",
        timeout=90,
    )


def test_unreachable_database_is_a_condition_and_a_retry(
    cluster: Cluster, operator: Operator
) -> None:
    closed = f"postgresql://nobody:nothing@127.0.0.1:{free_port()}/ragline"  # nothing listens
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "down-db"},
            "stringData": {"dsn": closed},
        },
    )
    apply(
        cluster,
        {
            "apiVersion": "ragline.dev/v1alpha1",
            "kind": "RagIndex",
            "metadata": {"name": "nodb"},
            "spec": {"database": {"secretRef": {"name": "down-db", "key": "dsn"}}},
        },
    )

    def unreachable() -> dict[str, Any] | None:
        conds = get(cluster, "ragindex", "nodb").get("status", {}).get("conditions", [])
        return next(
            (c for c in conds if c["type"] == "DatabaseReachable" and c["status"] == "False"), None
        )

    cond = wait_for("DatabaseReachable=False", unreachable)
    assert (
        cond["reason"] == "DatabaseUnreachable" and "cannot connect to Postgres" in cond["message"]
    )
    assert "nothing" not in cond["message"]  # the DSN's password is never echoed
    assert phase(cluster, "nodb") == "Pending"
    assert operator.proc is not None and operator.proc.poll() is None  # retried, not crashed


def test_inferencepool_with_deployment(cluster: Cluster, operator: Operator) -> None:
    apply(cluster, (REPO / "examples" / "self-hosted-pool.yaml").read_text())
    apply(cluster, (REPO / "examples" / "inferencepool.yaml").read_text())

    def children() -> dict[str, dict[str, Any]] | None:
        found = {}
        for kind in ("deployment", "service", "hpa", "pdb"):
            out = cluster.kubectl(
                "-n", NS, "get", kind, "-l", "ragline.dev/pool=local-llm", "-o", "json"
            )
            items = json.loads(out.stdout)["items"]
            if len(items) != 1:
                return None
            found[kind] = items[0]
        return found

    made = wait_for("pool children", children)
    assert made["hpa"]["spec"]["maxReplicas"] == 4
    assert (
        made["deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "vllm/vllm-openai:v0.9.2"
    )
    assert all(c["metadata"]["ownerReferences"][0]["name"] == "local-llm" for c in made.values())
    routing = get(cluster, "configmap", "ragline-routing")["data"]["routing.yaml"]
    names = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(routing) if d}
    assert {("InferencePool", "local-llm"), ("InferencePool", "default")} <= names


def test_providerbudget_status_follows_redis_counters(
    cluster: Cluster, operator: Operator, stack: EmbeddedStack
) -> None:
    apply(cluster, (REPO / "examples" / "providerbudget.yaml").read_text())
    wait_for(
        "state Ok",
        lambda: (
            get(cluster, "providerbudget", "openai-monthly").get("status", {}).get("state") == "Ok"
        ),
    )
    key = counters_key(NS, "openai-monthly", Period.MONTHLY, datetime.now(UTC))
    r = redis.Redis.from_url(stack.redis.url)
    r.hset(key, mapping={SPENT_USD_MICROS: 170_000_000, SPENT_REQUESTS: 42})
    status = wait_for(
        "Warning",
        lambda: (
            (s := get(cluster, "providerbudget", "openai-monthly").get("status", {})).get("state")
            == "Warning"
            and s
        ),
    )
    assert status["spent"]["usd"] == "170.000000" and status["remaining"]["usd"] == "30.000000"
    assert status["lastAlertThreshold"] == 80
    events = json.loads(
        cluster.kubectl(
            "-n",
            NS,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=openai-monthly",
            "-o",
            "json",
        ).stdout
    )["items"]
    assert any(
        e["reason"] == "BudgetThresholdCrossed" and "(threshold 80%)" in e["message"]
        for e in events
    )
    printed = cluster.kubectl("-n", NS, "get", "providerbudgets").stdout
    assert "Warning" in printed
    r.delete(key)
