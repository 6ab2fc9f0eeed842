"""Traces read back from a real Jaeger (OTLP in, query API out): the span tree of a streamed
query, SQL child spans, the provider call's `traceparent`, and an ingestion job's span
linked to the request that queued it. (Tempo, which production uses, is AGPL; it takes the
same OTLP.)"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragapi.embedded import EmbeddedStack, free_ports
from tests.conftest import REPO, start_api, stop_api
from tests.support.provider_server import ProviderServer

pytestmark = pytest.mark.integration
SERVICE = "ragline-trace-test"


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    grpc, http, ui, qgrpc, health, metrics = free_ports(6)
    env = {
        **os.environ,
        "RAGLINE_JAEGER_DIR": str(tmp_path_factory.mktemp("jaeger")),
        "RAGLINE_JAEGER_OTLP_GRPC_PORT": str(grpc),
        "RAGLINE_JAEGER_OTLP_HTTP_PORT": str(http),
        "RAGLINE_JAEGER_UI_PORT": str(ui),
        "RAGLINE_JAEGER_QUERY_GRPC_PORT": str(qgrpc),
        "RAGLINE_JAEGER_HEALTH_PORT": str(health),
        "RAGLINE_JAEGER_METRICS_PORT": str(metrics),
    }
    up = subprocess.run(
        [str(REPO / "hack" / "jaeger-up.sh")], env=env, capture_output=True, text=True, timeout=1800
    )
    try:
        assert up.returncode == 0, up.stderr
        yield {"otlp": f"http://127.0.0.1:{grpc}", "query": f"http://127.0.0.1:{ui}"}
    finally:
        subprocess.run(
            [str(REPO / "hack" / "jaeger-down.sh")], env=env, capture_output=True, timeout=60
        )


ROUTING = """\
apiVersion: ragline.dev/v1alpha1
kind: RagIndex
metadata: {{name: traced}}
spec: {{answer: {{poolRef: {{name: traced-chat}}}}}}
---
apiVersion: ragline.dev/v1alpha1
kind: InferencePool
metadata: {{name: traced-chat}}
spec:
  purpose: chat
  providers:
    - {{name: llm, type: openai, baseURL: "{url}", model: m, priority: 1, maxRetries: 0}}
"""


def _traces(jaeger: dict[str, str], operation: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"service": SERVICE, "limit": 50, "lookback": "1h"}
    if operation:
        params["operation"] = operation
    resp = httpx.get(f"{jaeger['query']}/api/traces", params=params, timeout=10)
    return list(resp.json().get("data") or [])


def _wait_traces(jaeger: dict[str, str], operation: str, need: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        for t in _traces(jaeger, operation):
            if need <= {s["operationName"] for s in t["spans"]}:
                return t
        if time.monotonic() > deadline:
            services = httpx.get(f"{jaeger['query']}/api/services", timeout=10).json()
            ops = httpx.get(
                f"{jaeger['query']}/api/services/{SERVICE}/operations", timeout=10
            ).json()
            found = [sorted({s["operationName"] for s in t["spans"]}) for t in _traces(jaeger)][:5]
            raise AssertionError(
                f"no trace of {operation} with {need}: services {services}, "
                f"operations {ops}, traces {found}"
            )
        time.sleep(0.5)


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def test_span_tree_attributes_traceparent_and_job_link(
    private_stack: EmbeddedStack, provider: ProviderServer, jaeger: dict[str, str], tmp_path: Path
) -> None:
    provider.state.reset()
    provider.state.dimensions = 64
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING.format(url=provider.url))
    api = start_api(
        routing,
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": jaeger["otlp"],
            "OTEL_SERVICE_NAME": SERVICE,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
        private_stack,
        tmp_path / "api.log",
    )
    try:
        h = {"Authorization": f"Bearer {api.create_key('admin')}"}
        queued = httpx.post(
            f"{api.url}/v1/indexes/traced/documents",
            params={"async": "true"},
            headers=h,
            json={"source": "t.txt", "content": "Disks fill up. Delete old WAL segments."},
        )
        assert queued.status_code == 202
        job_url = queued.json()["status_url"]
        deadline = time.monotonic() + 60
        while httpx.get(f"{api.url}{job_url}", headers=h).json()["state"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        streamed = httpx.post(
            f"{api.url}/v1/indexes/traced/query",
            headers=h,
            json={"question": "What about full disks?", "stream": True},
            timeout=30,
        )
        assert "event: done" in streamed.text
    finally:
        stop_api(api)

    trace = _wait_traces(
        jaeger, "POST /v1/indexes/{index}/query", {"embed", "retrieve", "fuse", "generate"}
    )
    spans = {s["spanID"]: s for s in trace["spans"]}
    by_name = {s["operationName"]: s for s in trace["spans"]}
    server = by_name["POST /v1/indexes/{index}/query"]

    def parent(span: dict[str, Any]) -> str | None:
        refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
        return refs[0]["spanID"] if refs else None

    def ancestors(span: dict[str, Any]) -> set[str]:
        out, p = set(), parent(span)
        while p and p in spans:
            out.add(p)
            p = parent(spans[p])
        return out

    for name in ("embed", "retrieve", "fuse", "generate"):
        assert server["spanID"] in ancestors(by_name[name]), name
    sql = [s for s in trace["spans"] if _tags(s).get("db.system") == "postgresql"]
    assert any(by_name["retrieve"]["spanID"] in ancestors(s) for s in sql), (
        "no SQL span under retrieve"
    )
    gen = _tags(by_name["generate"])
    assert gen["ragline.provider"] == "llm" and gen["ragline.model"] == "m"
    assert gen["ragline.tokens.output"] > 0 and gen["ragline.tokens.input"] > 0
    # The provider saw the same trace in its traceparent header.
    chat_calls = [c for c in provider.state.calls if c["endpoint"] == "chat"]
    traceparent = chat_calls[-1]["headers"]["traceparent"]
    assert traceparent.split("-")[1] == trace["traceID"].rjust(32, "0")

    job = _wait_traces(jaeger, "ingest_job", {"ingest_job", "embed"})
    job_span = next(s for s in job["spans"] if s["operationName"] == "ingest_job")
    linked = {
        r["traceID"] for r in job_span.get("references", []) if r["refType"] == "FOLLOWS_FROM"
    }
    uploads = _traces(jaeger, "POST /v1/indexes/{index}/documents")
    assert linked and linked <= {t["traceID"] for t in uploads}
