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

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from ragapi.budget_keys import SPENT_REQUESTS, SPENT_USD_MICROS, counters_key
from ragapi.contract import Period
from ragapi.embedded import EmbeddedStack, free_port
from tests.cluster.conftest import Cluster
from tests.conftest import ApiProcess, stop_api
from tests.support.prometheus import (
    API_JOB,
    OPERATOR_JOB,
    Prometheus,
    ScrapeTarget,
    check_every_query,
    drive_load,
    rule_checks,
    start_obs_api,
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


class Operator:
    """``ragline operator`` watching one namespace, its metrics on 127.0.0.1."""

    def __init__(self, cluster: Cluster, stack: EmbeddedStack, namespace: str, log: Path) -> None:
        self.namespace = namespace
        self.log = log
        self.metrics_port = free_port()
        self.env = {
            **cluster.env,
            "KUBECONFIG": str(cluster.kubeconfig),
            **stack.environ(),
            # The operator does DDL and cross-tenant counts: the owner role, not the API's.
            "RAGLINE_DATABASE_URL": stack.postgres.url,
            "RAGLINE_DATABASE_SECRET_NAME": "ragline-db",
            "RAGLINE_METRICS_ADDRESS": "127.0.0.1",
            "RAGLINE_METRICS_PORT": str(self.metrics_port),
            "RAGLINE_JOB_POLL_SECONDS": "1",
            "RAGLINE_STATUS_REFRESH_SECONDS": "1",
            "RAGLINE_IMAGE": "ragline:test",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def start(self) -> Operator:
        self.proc = subprocess.Popen(
            [
                RAGLINE,
                "operator",
                "--namespace",
                self.namespace,
                "--liveness-host",
                "127.0.0.1",
                "--liveness-port",
                str(free_port()),
            ],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        return self

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        self.terminate()
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def get(cluster: Cluster, ns: str, kind: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("-n", ns, "get", kind, name, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def apply(cluster: Cluster, ns: str, *docs: dict[str, Any]) -> None:
    text = yaml.safe_dump_all(docs)
    cluster.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=text)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30, why: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{why}")
        time.sleep(0.3)


def build_job(cluster: Cluster, ns: str, index: str) -> str | None:
    out = cluster.kubectl("-n", ns, "get", "jobs", "-l", f"ragline.dev/index={index}", "-o", "json")
    items = json.loads(out.stdout)["items"]
    return items[0]["metadata"]["name"] if len(items) == 1 else None


def patch_job_status(cluster: Cluster, ns: str, job: str, status: dict[str, Any]) -> None:
    cluster.kubectl(
        "-n",
        ns,
        "patch",
        "job",
        job,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _condition(kind: str, reason: str, now: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": "set by the test",
    }


def run_job_and_complete(cluster: Cluster, ns: str, job_name: str) -> None:
    """What the kubelet would do: run the Job's container command, then record success."""
    job = get(cluster, ns, "job", job_name)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = dict(cluster.env)
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            secret = get(cluster, ns, "secret", ref["name"])
            env[var["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    out = subprocess.run(
        [RAGLINE, *container["args"]], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch_job_status(
        cluster,
        ns,
        job_name,
        {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "ready": 0,
            "active": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                _condition("SuccessCriteriaMet", "CompletionsReached", now),
                _condition("Complete", "CompletionsReached", now),
            ],
        },
    )


def fail_job(cluster: Cluster, ns: str, job_name: str) -> None:
    """What the Job controller records when the pod failed more than backoffLimit times."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch_job_status(
        cluster,
        ns,
        job_name,
        {
            "startTime": now,
            "failed": 4,
            "ready": 0,
            "active": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                _condition("FailureTarget", "BackoffLimitExceeded", now),
                _condition("Failed", "BackoffLimitExceeded", now),
            ],
        },
    )


def ragindex(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "RagIndex", "metadata": {"name": name}, "spec": spec}


def without_secret(name: str) -> dict[str, Any]:
    """A RagIndex whose reconcile fails (TemporaryError, retried) until the Secret exists."""
    return ragindex(name, database={"secretRef": {"name": "absent", "key": "dsn"}})


def status(cluster: Cluster, ns: str, kind: str, name: str) -> dict[str, Any]:
    return dict(get(cluster, ns, kind, name).get("status") or {})


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def obs_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """Postgres and Redis of this test alone (the ingestion job queue is table-wide)."""
    s = EmbeddedStack(tmp_path_factory.mktemp("prometheus-operator-stack"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def namespaces(cluster: Cluster, crds_applied: object, obs_stack: EmbeddedStack) -> None:
    for ns in (NS, STUCK_NS):
        cluster.kubectl("create", "namespace", ns)
    cluster.kubectl(
        "-n",
        NS,
        "create",
        "secret",
        "generic",
        "ragline-db",
        f"--from-literal=databaseUrl={obs_stack.postgres.url}",
    )


@pytest.fixture()
def operators(
    cluster: Cluster, namespaces: None, obs_stack: EmbeddedStack, tmp_path: Path
) -> Iterator[tuple[Operator, Operator]]:
    main = Operator(cluster, obs_stack, NS, tmp_path / "operator.log")
    stuck = Operator(cluster, obs_stack, STUCK_NS, tmp_path / "operator-stuck.log")
    try:
        yield main.start(), stuck.start()
    finally:
        stuck.terminate()  # both shut down at once
        main.stop()
        stuck.stop()


@pytest.fixture()
def obs_api(
    obs_stack: EmbeddedStack, provider: ProviderServer, tmp_path: Path
) -> Iterator[ApiProcess]:
    proc = start_obs_api(obs_stack, provider, tmp_path)
    try:
        yield proc
    finally:
        stop_api(proc)
        provider.state.reset()


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
    obs_stack: EmbeddedStack,
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
            drive_operator(cluster, obs_stack, prometheus, why)
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
