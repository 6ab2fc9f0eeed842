"""Every dashboard panel and every alert rule returns series from a real Prometheus that
scrapes a real API process under load AND the real operator's /metrics endpoint, with the
operator reconciling against a real kube-apiserver (tests/cluster/conftest.py), real
Postgres and Redis (an embedded stack of this module's own).

The operator is made to produce every series the panels and alerts read:

- reconciles of all three kinds that succeed (an InferencePool, a ProviderBudget, RagIndexes);
- an index build that completes (the test runs the Job's command and marks it Complete: no
  pod runs in this cluster) and one that fails (its Job is marked Failed):
  ``ragline_index_build_seconds`` and ``ragline_index_build_failed`` 0 and 1;
- a ProviderBudget with a USD limit whose Redis counters stand at 90%:
  ``ragline_budget_{spent,limit}_usd`` and ``ragline_budget_used_ratio`` >= 0.8;
- RagIndexes whose reconcile keeps failing (a missing Secret): ``ragline_reconcile_total``
  with ``outcome="retry"``, growing.

RaglineOperatorNotReconciling reads "no success for 15 minutes" (impossible in a bounded
test) or "failures and no success at all" for a kind; the second is what a second operator
shows, watching a namespace of its own where every RagIndex reconcile fails. Its ``for: 5m``
keeps it pending here, as RaglineBudgetNearlyExhausted's does; the two alerts with
``for: 1m`` (RaglineIndexBuildFailed, RaglineBudgetExhausted) are waited for until they fire.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from ragapi.budget_keys import SPENT_REQUESTS, SPENT_USD_MICROS, counters_key
from ragapi.contract import Period
from ragapi.embedded import EmbeddedStack
from tests.cluster.conftest import Cluster
from tests.conftest import ApiProcess
from tests.support.operator import (
    Operator,
    apply,
    build_job,
    fail_job,
    get,
    run_job_and_complete,
    wait_for,
)
from tests.support.prometheus import (
    API_JOB,
    OPERATOR_JOB,
    Prometheus,
    ScrapeTarget,
    check_every_query,
    drive_load,
    obs_api_process,
    rule_checks,
)
from tests.support.provider_server import ProviderServer

pytestmark = pytest.mark.cluster

RAGLINE = str(Path(sys.executable).parent / "ragline")
NS = "ragline-obs"  # the release: API and operator
STUCK_NS = "ragline-obs-stuck"  # a second operator, every reconcile of it failing
API_VERSION = "ragline.dev/v1alpha1"
BUDGET = "op-usd"
BUDGET_LIMIT_USD = 10
BUDGET_SPENT_USD = 9  # 90%: over the 80% threshold, not exhausted
# The alerts whose `for:` is short enough to fire within the test.
FIRING = ("RaglineIndexBuildFailed", "RaglineBudgetExhausted")


# ------------------------------------------------------------------ the operator side


def ragindex(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "RagIndex", "metadata": {"name": name}, "spec": spec}


def without_secret(name: str) -> dict[str, Any]:
    """A RagIndex whose reconcile fails (TemporaryError, retried) until the Secret exists."""
    return ragindex(name, database={"secretRef": {"name": "absent", "key": "dsn"}})


def status(cluster: Cluster, ns: str, kind: str, name: str) -> dict[str, Any]:
    return dict(get(cluster, ns, kind, name).get("status") or {})


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def namespaces(cluster: Cluster, crds_applied: object, private_stack: EmbeddedStack) -> None:
    for ns in (NS, STUCK_NS):
        cluster.kubectl("create", "namespace", ns)
    cluster.kubectl(
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "ragline-db",
        f"--from-literal=databaseUrl={private_stack.postgres.url}",
    )


@pytest.fixture()
def operators(
    cluster: Cluster, namespaces: None, private_stack: EmbeddedStack, tmp_path: Path
) -> Iterator[tuple[Operator, Operator]]:
    main = Operator(cluster, private_stack, NS, tmp_path / "operator.log")
    stuck = Operator(cluster, private_stack, STUCK_NS, tmp_path / "operator-stuck.log")
    try:
        yield main.start(), stuck.start()
    finally:
        stuck.terminate()  # both shut down at once
        main.stop()
        stuck.stop()


@pytest.fixture()
def obs_api(
    private_stack: EmbeddedStack, provider: ProviderServer, tmp_path: Path
) -> Iterator[ApiProcess]:
    with obs_api_process(private_stack, provider, tmp_path) as api:
        yield api


@pytest.fixture()
def prometheus(
    tmp_path: Path, obs_api: ApiProcess, operators: tuple[Operator, Operator]
) -> Iterator[Prometheus]:
    main, stuck = operators
    prom = Prometheus(
        tmp_path,
        [
            ScrapeTarget(API_JOB, obs_api.url.removeprefix("http://"), {"namespace": NS}),
            ScrapeTarget(OPERATOR_JOB, main.address, {"namespace": NS}),
            ScrapeTarget(OPERATOR_JOB, stuck.address, {"namespace": STUCK_NS}),
        ],
    )
    try:
        yield prom.start()
    finally:
        prom.stop()


# ------------------------------------------------------------------ the test


def drive_operator(cluster: Cluster, stack: EmbeddedStack, prom: Prometheus, why: str) -> None:
    # The budget's counters first, as the API pods would have written them: 90% of $10.
    key = counters_key(NS, BUDGET, Period.DAILY, datetime.now(UTC))
    r = redis.Redis.from_url(stack.redis.url)
    r.hset(key, mapping={SPENT_USD_MICROS: BUDGET_SPENT_USD * 1_000_000, SPENT_REQUESTS: 9})
    r.close()
    apply(
        cluster,
        NS,
        {
            "apiVersion": API_VERSION,
            "kind": "InferencePool",
            "metadata": {"name": "op-pool"},
            "spec": {
                "purpose": "chat",
                "providers": [
                    {
                        "name": "op-llm",
                        "type": "openai",
                        "baseURL": "http://127.0.0.1:9/v1",
                        "model": "test-model",
                        "priority": 1,
                    },
                    {"name": "extractive", "type": "extractive", "priority": 9},
                ],
            },
        },
        {
            "apiVersion": API_VERSION,
            "kind": "ProviderBudget",
            "metadata": {"name": BUDGET},
            "spec": {
                "poolRef": {"name": "op-pool"},
                "provider": "op-llm",
                "period": "daily",
                "limit": {"usd": f"{BUDGET_LIMIT_USD}.00"},
                "pricing": [{"model": "test-model", "inputPer1M": "1", "outputPer1M": "2"}],
                "onExhausted": "fallback",
            },
        },
        ragindex("op-built"),
        ragindex("op-failed"),
        without_secret("op-nosecret-1"),
    )
    apply(cluster, STUCK_NS, without_secret("stuck-1"))

    # One build fails (as early as possible: its alert needs a minute to fire), one completes.
    failed = wait_for("op-failed's Job", lambda: build_job(cluster, NS, "op-failed"), why=why)
    fail_job(cluster, NS, failed)
    built = wait_for("op-built's Job", lambda: build_job(cluster, NS, "op-built"), why=why)
    run_job_and_complete(cluster, NS, built)

    # The failing reconciles keep failing: once Prometheus has the first retry of each
    # operator, a second RagIndex makes the counter grow (kopf would retry after 30 s).
    for ns in (NS, STUCK_NS):
        prom.wait_for(f'ragline_reconcile_total{{namespace="{ns}",outcome="retry"}}')
    apply(cluster, NS, without_secret("op-nosecret-2"))
    apply(cluster, STUCK_NS, without_secret("stuck-2"))

    for index, phase in (("op-built", "Ready"), ("op-failed", "Failed")):
        wait_for(
            f"{index} {phase}",
            lambda: status(cluster, NS, "ragindex", index).get("phase") == phase,  # noqa: B023
            why=why,
        )
    budget = wait_for(
        "budget Warning",
        lambda: (
            (s := status(cluster, NS, "providerbudget", BUDGET)).get("state") == "Warning" and s
        ),
        why=why,
    )
    assert budget["spent"]["usd"] == f"{BUDGET_SPENT_USD}.000000", budget
    for ns in (NS, STUCK_NS):
        prom.wait_for(
            f'increase(ragline_reconcile_total{{namespace="{ns}",outcome="retry"}}[15m]) > 0'
        )


def test_every_panel_and_rule_returns_series_with_the_operator(
    cluster: Cluster,
    private_stack: EmbeddedStack,
    obs_api: ApiProcess,
    operators: tuple[Operator, Operator],
    prometheus: Prometheus,
    provider: ProviderServer,
) -> None:
    started = time.monotonic()
    main, stuck = operators
    why = f"operator logs: {main.log}, {stuck.log}"
    up = prometheus.wait_for("up == 1", timeout=30)
    wait_for(
        "3 targets up",
        lambda: len(prometheus.query("up == 1")[1]) == 3,
        why=f"{up}\n{main.tail()}\n{stuck.tail()}",
    )

    # The API's load and the operator's work side by side.
    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(drive_load, obs_api, prometheus, provider)
        try:
            drive_operator(cluster, private_stack, prometheus, why)
        except BaseException:
            print(f"--- operator\n{main.tail()}\n--- stuck operator\n{stuck.tail()}")
            raise
        load.result()
    driven = time.monotonic() - started

    assert prometheus.query(
        f'ragline_budget_used_ratio{{namespace="{NS}",budget="{NS}/{BUDGET}"}} >= 0.8'
    )[1]
    assert prometheus.query(f'ragline_budget_limit_usd{{namespace="{NS}"}} == {BUDGET_LIMIT_USD}')[
        1
    ]
    failing = prometheus.query(f'ragline_index_build_failed{{namespace="{NS}"}}')[1]
    assert {s["metric"]["index"]: s["value"][1] for s in failing} == {
        "op-built": "0",
        "op-failed": "1",
    }

    report = check_every_query(prometheus, operator=True, namespace=NS)
    print(report)
    checked = time.monotonic() - started

    # Every alert's expression returns series, so each is pending at least; the stuck
    # operator's namespace, and only it, is not reconciling.
    alerts, _ = rule_checks()
    names = {c.name.removeprefix("alert ") for c in alerts if c.name.startswith("alert ")}
    pending = wait_for(
        "every alert pending or firing",
        lambda: (a := prometheus.alerts()).keys() >= names and a,
        why=str(prometheus.alerts()),
    )
    not_reconciling = prometheus.query('ALERTS{alertname="RaglineOperatorNotReconciling"}')[1]
    assert {(s["metric"]["namespace"], s["metric"]["kind"]) for s in not_reconciling} == {
        (STUCK_NS, "RagIndex")
    }
    # The two alerts with `for: 1m` fire.
    states = wait_for(
        f"{FIRING} firing",
        lambda: all((a := prometheus.alerts()).get(n) == "firing" for n in FIRING) and a,
        timeout=75,
        why=str(prometheus.alerts()),
    )
    print("alerts after the load: " + ", ".join(f"{n} {s}" for n, s in sorted(pending.items())))
    print("alerts at the end: " + ", ".join(f"{n} {s}" for n, s in sorted(states.items())))
    print(
        f"load and operator: {driven:.1f} s, checks: {checked - driven:.1f} s, "
        f"until firing: {time.monotonic() - started - checked:.1f} s"
    )
