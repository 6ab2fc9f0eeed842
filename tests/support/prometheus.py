"""A real Prometheus (Debian's package, hack/install-prometheus.sh) on 127.0.0.1 with
Ragline's alert rules, and the evaluation of every dashboard panel, template variable and
rule through its HTTP API: each must parse and return at least one series, and the report
names each one that does not.

Also the Ragline side of that proof shared by the tests that use it: the routing of an API
process under observation (`ROUTING`, `start_obs_api`) and a small bounded load over it
(`Load`, `drive_load`): ingests (synchronous and queued), searches, plain and streamed
queries, a provider fault that opens a breaker, a budget crossing, a provider rate limit,
slow answers, failing embeddings.

Used by tests/integration/test_prometheus.py (an API only: the operator's queries parse
only) and tests/cluster/test_prometheus_operator.py (API and operator: every query must
return series).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ragapi.embedded import EmbeddedStack, free_port
from tests.conftest import ApiProcess, start_api, stop_api
from tests.support.provider_server import Fault, ProviderServer

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
RULES = DASHBOARDS / "alerts" / "ragline.rules.yaml"
NAMESPACE = "ragline-test"  # what Kubernetes service discovery would add as `namespace`
API_JOB = "ragline-api"
OPERATOR_JOB = "ragline-operator"


def variables(namespace: str = NAMESPACE) -> dict[str, str]:
    """Grafana's variables as these tests substitute them."""
    return {
        "namespace": namespace,
        "index": ".*",
        "provider": ".*",
        "__rate_interval": "1m",
        "__interval": "15s",
        "__range": "5m",
    }


# Exported only by the operator (operator/ragoperator/metrics.py).
OPERATOR_METRICS = {
    "ragline_reconcile_duration_seconds",
    "ragline_reconcile_total",
    "ragline_reconcile_last_success_timestamp_seconds",
    "ragline_reconcile_in_flight",
    "ragline_index_build_seconds",
    "ragline_index_build_failed",
    "ragline_budget_spent_usd",  # declared by the API too, but only the operator sets it
    "ragline_budget_limit_usd",
    "ragline_budget_used_ratio",
}
# Used by the dashboards and alerts, exported by nothing yet ({metric: what should export
# it}). A query over one must parse; when one of them appears in a scrape, the check fails
# until it is taken off this list.
PENDING_METRICS: dict[str, str] = {}
OPERATOR_OR_PENDING = OPERATOR_METRICS | set(PENDING_METRICS)

# ------------------------------------------------------------------------ Prometheus


@dataclass(frozen=True)
class ScrapeTarget:
    """One target; targets of the same job share its scrape config."""

    job: str
    address: str  # host:port on 127.0.0.1
    labels: dict[str, str] = field(default_factory=lambda: {"namespace": NAMESPACE})


class Prometheus:
    """A real Prometheus on 127.0.0.1: 1 s scrapes, 1 s rule evaluation, Ragline's rules."""

    def __init__(self, workdir: Path, targets: list[ScrapeTarget]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is not installed: run hack/install-prometheus.sh")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": job,
                    "metrics_path": "/metrics",
                    "static_configs": [
                        {"targets": [t.address], "labels": t.labels}
                        for t in targets
                        if t.job == job
                    ],
                }
                for job in dict.fromkeys(t.job for t in targets)
            ],
        }
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Prometheus:
        check = subprocess.run(
            [str(Path(self.binary).parent / "promtool"), "check", "config", str(self.config)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prometheus not ready:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def query(self, expr: str) -> tuple[str | None, list[dict[str, Any]]]:
        """(error, series) of an instant query."""
        resp = httpx.post(f"{self.url}/api/v1/query", data={"query": expr}, timeout=10)
        body = resp.json()
        if body.get("status") != "success":
            return f"{body.get('errorType')}: {body.get('error')}", []
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return None, [{"value": data["result"]}]
        return None, data["result"]

    def wait_for(self, expr: str, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            error, series = self.query(expr)
            assert error is None, error
            if series:
                return series
            assert time.monotonic() < deadline, f"nothing for {expr} after {timeout} s"
            time.sleep(0.25)

    def alerts(self) -> dict[str, str]:
        """Alert name -> "firing" or "pending", as the rule manager has them now."""
        _, series = self.query("ALERTS")
        out: dict[str, str] = {}
        for s in series:
            name, state = s["metric"]["alertname"], s["metric"]["alertstate"]
            out[name] = "firing" if "firing" in (state, out.get(name)) else state
        return out

    def exported(self) -> dict[str, set[str]]:
        """ragline_* metric names in the TSDB, with the jobs that export them."""
        _, series = self.query('group by (__name__, job) ({__name__=~"ragline_.+"})')
        out: dict[str, set[str]] = {}
        for s in series:
            out.setdefault(s["metric"]["__name__"], set()).add(s["metric"]["job"])
        return out


# -------------------------------------------------------------------- what to evaluate


@dataclass(frozen=True)
class Check:
    name: str
    expr: str


def substitute(expr: str, namespace: str = NAMESPACE) -> str:
    values = variables(namespace)

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in values, f"unknown variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)


def dashboard_checks(namespace: str = NAMESPACE) -> list[Check]:
    checks = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        d = json.loads(path.read_text())
        for v in d["templating"]["list"]:
            if v["type"] != "query":
                continue
            m = re.fullmatch(r"label_values\((.*), *(\w+)\)", v["query"], re.S)
            assert m, f"{d['title']}: variable {v['name']}: {v['query']}"
            checks.append(
                Check(
                    f"{d['title']} / variable ${v['name']}",
                    substitute(f"count by ({m.group(2)}) ({m.group(1)})", namespace),
                )
            )
        nested = [q for p in d["panels"] if p["type"] == "row" for q in p.get("panels", [])]
        for p in d["panels"] + nested:
            for t in p.get("targets", []):
                checks.append(
                    Check(
                        f"{d['title']} / panel {p['title']!r} [{t['refId']}]",
                        substitute(t["expr"], namespace),
                    )
                )
    return checks


def rule_checks() -> tuple[list[Check], dict[str, str]]:
    """Every rule's expression, and the recording rules' expressions by name."""
    checks, recorded = [], {}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                recorded[rule["record"]] = rule["expr"]
                checks.append(Check(f"recording rule {rule['record']}", rule["expr"]))
            else:
                checks.append(Check(f"alert {rule['alert']}", rule["expr"]))
    return checks, recorded


def metrics_of(expr: str, recorded: dict[str, str]) -> set[str]:
    """Metric names an expression reads, recording rules expanded; histogram series
    (_bucket, _count, _sum) count under their family's name."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    names: set[str] = set()
    for token in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        if token in recorded:
            names |= metrics_of(recorded[token], recorded)
        elif token.startswith("ragline_"):
            names.add(token)
    return names


def family(name: str, known: set[str]) -> str:
    for suffix in ("_bucket", "_count", "_sum"):
        if name.endswith(suffix) and name.removesuffix(suffix) in known:
            return name.removesuffix(suffix)
    return name


def check_every_query(
    prom: Prometheus, *, operator: bool, namespace: str = NAMESPACE, timeout: float = 30
) -> str:
    """Evaluates every panel, variable and rule (dashboards with ``$namespace`` set to
    ``namespace``); returns a report and fails the test naming each query that does not
    parse or returns nothing (retrying those until ``timeout``: rules and slowly refreshed
    gauges need a few evaluation rounds).

    ``operator=False``: no operator is scraped, so queries over OPERATOR_METRICS only have
    to parse. ``operator=True``: they must return series too, and every operator metric
    must be exported."""
    rules, recorded = rule_checks()
    checks = dashboard_checks(namespace) + rules
    exported = prom.exported()
    exported_families = {family(m, OPERATOR_OR_PENDING) for m in exported}
    problems: dict[str, str] = {}
    for metric in PENDING_METRICS:
        if metric in exported_families:
            problems[f"PENDING_METRICS {metric}"] = "is exported now: take it off the list"
    if operator:
        for metric in sorted(OPERATOR_METRICS - exported_families):
            problems[f"operator metric {metric}"] = "is not in the TSDB"
    must_return: list[Check] = []
    parse_only: list[tuple[Check, str]] = []
    for c in checks:
        names = metrics_of(c.expr, recorded)
        # {__name__=~"a|b"}: one of the alternatives is enough
        alternatives = [set(m.split("|")) for m in re.findall(r'__name__=~"([^"]*)"', c.expr)]
        if not names and not alternatives:
            problems[c.name] = f"reads no ragline metric: {c.expr}"
            continue
        unknown = {
            n
            for n in names.union(*alternatives)
            if n not in exported and family(n, OPERATOR_OR_PENDING) not in OPERATOR_OR_PENDING
        }
        for alt in alternatives:
            if not alt & exported.keys():
                names |= alt
        families = {family(n, OPERATOR_OR_PENDING) for n in names}
        if unknown:
            problems[c.name] = f"reads metrics nothing exports: {sorted(unknown)}"
            continue
        pending = families & set(PENDING_METRICS)
        if pending:
            parse_only.append((c, f"pending {sorted(pending)}"))
        elif families & OPERATOR_METRICS and not operator:
            parse_only.append((c, "operator metrics, no operator scraped"))
        else:
            must_return.append(c)
    for c, _why in parse_only:
        error, _ = prom.query(c.expr)
        if error:
            problems[c.name] = f"does not parse: {error}\n    {c.expr}"
    deadline = time.monotonic() + timeout
    waiting = list(must_return)
    while True:
        still = []
        for c in waiting:
            error, series = prom.query(c.expr)
            if error:
                problems[c.name] = f"does not parse: {error}\n    {c.expr}"
            elif not series:
                still.append(c)
        waiting = still
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(1)
    for c in waiting:
        seen = {
            n: len(prom.query(f"{n}{{namespace=~'.*'}}")[1]) for n in metrics_of(c.expr, recorded)
        }
        problems[c.name] = f"returns no series (series per metric: {seen})\n    {c.expr}"
    report = (
        f"{len(checks)} queries: {len(must_return) - len(waiting)} returned series, "
        f"{len(parse_only)} parsed only:\n"
        + "\n".join(f"  {c.name} ({why})" for c, why in parse_only)
    )
    assert not problems, (
        report + "\n\nproblems:\n" + "\n".join(f"- {name}: {why}" for name, why in problems.items())
    )
    return report


# -------------------------------------------------------------------- the Ragline side

ROUTING = """\
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: obs-docs}}
spec: {{}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: obs-plain}}
spec:
  search: {{hybrid: false, topK: 5}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: obs-llm}}
spec:
  answer: {{poolRef: {{name: obs-budgeted}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: obs-slow}}
spec:
  answer: {{poolRef: {{name: obs-slow}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: obs-fragile}}
spec:
  answer: {{poolRef: {{name: obs-fragile}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: obs-rpm}}
spec:
  answer: {{poolRef: {{name: obs-rpm}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: obs-remote}}
spec:
  embedding: {{poolRef: {{name: obs-embed}}, model: test-embed, dimensions: 64}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: default}}
spec:
  purpose: chat
  providers: [{{name: extractive, type: extractive}}]
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: obs-budgeted}}
spec:
  purpose: chat
  providers:
    - {{name: obs-llm-a, type: openai, baseURL: "{url}", model: test-model, priority: 1,
       timeoutSeconds: 5, maxRetries: 0}}
    - {{name: extractive, type: extractive, priority: 9}}
  circuitBreaker: {{failureThreshold: 1000, cooldownSeconds: 1}}
---
apiVersion: ragline.dev/v1alpha1
kind: ProviderBudget
metadata: {{name: obs-budget-{run}}}
spec:
  poolRef: {{name: obs-budgeted}}
  provider: obs-llm-a
  period: daily
  limit: {{requests: 1}}
  pricing: [{{model: test-model, inputPer1M: "1", outputPer1M: "2"}}]
  onExhausted: fallback
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: obs-slow}}
spec:
  purpose: chat
  providers:
    - {{name: obs-llm-slow, type: openai, baseURL: "{url}", model: test-model, priority: 1,
       timeoutSeconds: 10, maxRetries: 0}}
    - {{name: extractive, type: extractive, priority: 9}}
  circuitBreaker: {{failureThreshold: 1000, cooldownSeconds: 1}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: obs-fragile}}
spec:
  purpose: chat
  providers:
    - {{name: obs-llm-flaky, type: openai, baseURL: "{url}", model: test-model, priority: 1,
       timeoutSeconds: 5, maxRetries: 0}}
  circuitBreaker: {{failureThreshold: 2, cooldownSeconds: 3600}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: obs-rpm}}
spec:
  purpose: chat
  providers:
    - {{name: obs-llm-rpm, type: openai, baseURL: "{url}", model: test-model, priority: 1,
       timeoutSeconds: 5, maxRetries: 0}}
    - {{name: extractive, type: extractive, priority: 9}}
  circuitBreaker: {{failureThreshold: 1000, cooldownSeconds: 1}}
---
apiVersion: ragline.dev/v1alpha1
kind: ProviderBudget
metadata: {{name: obs-rpm-{run}}}
spec:
  poolRef: {{name: obs-rpm}}
  provider: obs-llm-rpm
  period: daily
  limit: {{requests: 1000}}
  rateLimits: {{requestsPerMinute: 1}}
  pricing: [{{model: test-model, inputPer1M: "1", outputPer1M: "2"}}]
  onExhausted: fallback
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: obs-embed}}
spec:
  purpose: embedding
  providers:
    - {{name: obs-emb, type: openai, baseURL: "{url}", model: test-embed, priority: 1,
       maxRetries: 0}}
  circuitBreaker: {{failureThreshold: 1000, cooldownSeconds: 1}}
"""

RUNBOOK = """# Runbook

## Disk full

When the disk is full, delete old WAL segments and extend the volume by 20 percent.

## High latency

When latency is high, raise the replica count of the API deployment.
"""
QUESTION = "What do I do when the disk is full?"
SLOW_SECONDS = 2.8  # over the 2.5 s latency SLO threshold


class Load:
    """A small, bounded load; every kind of event happens in each of two phases, so each
    counter has a sample before it grows (rate() needs that)."""

    def __init__(self, client: httpx.Client, provider: ProviderServer) -> None:
        self.c = client
        self.provider = provider

    def ingest(self, index: str, source: str, content: str, *, job: bool = False) -> httpx.Response:
        return self.c.post(
            f"/v1/indexes/{index}/documents",
            params={"async": "true"} if job else None,
            json={"source": source, "content": content, "content_type": "text/markdown"},
        )

    def query(self, index: str, *, stream: bool = False) -> httpx.Response:
        return self.c.post(
            f"/v1/indexes/{index}/query", json={"question": QUESTION, "stream": stream}
        )

    def seed(self) -> None:
        for index in ("obs-llm", "obs-slow", "obs-fragile", "obs-rpm", "obs-plain"):
            r = self.ingest(index, "runbook.md", RUNBOOK)
            assert r.status_code == 201, r.text
        assert self.ingest("obs-remote", "remote.md", RUNBOOK).status_code == 201
        job = self.ingest("obs-remote", "remote-job.md", RUNBOOK + "\nQueued.", job=True)
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 30
        while self.c.get(job.json()["status_url"]).json()["state"] != "succeeded":
            assert time.monotonic() < deadline, "the first ingestion job did not succeed"
            time.sleep(0.2)
        # From now on every call to the embedding provider fails: synchronous uploads to
        # obs-remote answer 5xx, its jobs retry with backoff.
        self.provider.state.inject("embeddings", *[Fault("500")] * 500)

    def phase(self, n: int) -> None:
        c = self.c
        source = f"runbook-{n}.md"
        assert self.ingest("obs-docs", source, RUNBOOK).status_code == 201
        assert self.ingest("obs-docs", source, RUNBOOK).status_code == 200  # unchanged
        updated = RUNBOOK + f"\n## Phase {n}\n\nPhase {n} adds a section.\n"
        assert self.ingest("obs-docs", source, updated).status_code == 201
        refused = c.post(
            "/v1/indexes/obs-docs/documents", content=b"x", headers={"content-type": "text/plain"}
        )
        assert refused.status_code == 415, refused.text
        failed = self.ingest("obs-remote", f"remote-{n}.md", RUNBOOK)
        assert failed.status_code >= 500, failed.text
        for i in range(2):
            r = self.ingest("obs-remote", f"remote-job-{n}-{i}.md", RUNBOOK, job=True)
            assert r.status_code == 202, r.text

        for index, extra in (
            ("obs-docs", {}),
            ("obs-docs", {"ef_search": 64, "top_k": 3}),
            ("obs-plain", {}),
        ):
            r = c.post(f"/v1/indexes/{index}/search", json={"query": "disk full", **extra})
            assert r.status_code == 200, r.text
        nothing = c.post(
            "/v1/indexes/obs-plain/search", json={"query": "zebra", "filters": {"tags": ["none"]}}
        )
        assert nothing.status_code == 200, nothing.text

        assert self.query("obs-docs").status_code == 200
        streamed = self.query("obs-docs", stream=True)
        assert streamed.status_code == 200 and "event: done" in streamed.text
        chat = c.post(
            "/v1/chat/completions",
            json={"model": "obs-docs", "messages": [{"role": "user", "content": QUESTION}]},
        )
        assert chat.status_code == 200, chat.text

        # ProviderBudget of 1 request: the first call of the run is the model's, the rest
        # are refused (budget_exhausted) and fall back to the extractive provider.
        for _ in range(2):
            body = self.query("obs-llm").json()
            assert body["provider"] in ("obs-llm-a", "extractive"), body
        assert body["skipped"] == [{"provider": "obs-llm-a", "reason": "budget_exhausted"}]
        # 1 request per minute: the second call is refused by the provider rate limit.
        for _ in range(2):
            assert self.query("obs-rpm").status_code == 200
        # Two server errors open the breaker (threshold 2, cooldown 1 h); later calls skip
        # the provider (circuit_open). The router's last resort answers: extractive.
        if n == 1:
            self.provider.state.inject("chat", Fault("500"), Fault("500"))
        reasons = set()
        for _ in range(2):
            body = self.query("obs-fragile").json()
            reasons |= {s["reason"] for s in body["skipped"]}
        assert reasons == ({"server_error"} if n == 1 else {"circuit_open"}), reasons
        # Three answers slower than the latency SLO's 2.5 s, one of them streamed.
        self.provider.state.inject("chat", *[Fault("latency", SLOW_SECONDS)] * 3)
        with ThreadPoolExecutor(3) as pool:
            slow = list(pool.map(lambda s: self.query("obs-slow", stream=s), (False, False, True)))
        assert all(r.status_code == 200 for r in slow), [r.text for r in slow]
        assert slow[0].json()["provider"] == "obs-llm-slow"


def cached_questions(client: httpx.Client, phase: int) -> None:
    """The same question twice without `no-cache`: a miss, then a hit."""
    for _ in range(2):
        resp = client.post(
            "/v1/indexes/obs-docs/query",
            json={"question": f"What is phase {phase}?"},
            headers={"Cache-Control": "max-age=60"},
        )
        assert resp.status_code == 200, resp.text


@contextmanager
def obs_api_process(
    stack: EmbeddedStack, provider: ProviderServer, workdir: Path
) -> Iterator[ApiProcess]:
    """A real API process serving ROUTING against the provider test server, stopped on
    exit. The stack should be the caller's alone: the ingestion job queue is table-wide,
    and another API process would claim (and settle) this one's jobs."""
    provider.state.reset()
    provider.state.dimensions = 64
    routing = workdir / "routing.yaml"
    routing.write_text(ROUTING.format(url=provider.url, run=uuid.uuid4().hex[:8]))
    api = start_api(
        routing,
        # A job failing on a transient error stays queued (retrying with backoff) for
        # more than 30 s before it is dead-lettered: the backlog grows during the test.
        {"RAGLINE_INGEST_MAX_ATTEMPTS": "6", "RAGLINE_INGEST_WORKERS": "1"},
        stack,
        workdir / "api.log",
    )
    try:
        yield api
    finally:
        stop_api(api)
        provider.state.reset()


def drive_load(
    api: ApiProcess, prom: Prometheus, provider: ProviderServer, job: str = API_JOB
) -> None:
    """The load in two phases, with a scrape of ``job`` between them and one after: every
    counter has a sample before it grows, and Prometheus has seen the end of the load."""
    key = api.create_key("admin")
    with httpx.Client(
        # Faults and budget crossings need every question to reach the provider.
        base_url=api.url,
        headers={"Authorization": f"Bearer {key}", "Cache-Control": "no-cache"},
        timeout=30,
    ) as client:
        load = Load(client, provider)
        load.seed()
        load.phase(1)
        cached_questions(client, 1)
        # Let Prometheus see every series once before phase 2 makes them grow.
        seen = time.time()
        prom.wait_for(f'timestamp(up{{job="{job}"}}) > {seen + 1}')
        load.phase(2)
        cached_questions(client, 2)
    ended = time.time()
    prom.wait_for(f'timestamp(up{{job="{job}"}}) > {ended + 1}')
