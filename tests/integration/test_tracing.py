"""Spans for the query path: a server span with embed, retrieve, fuse and generate children
in one trace, and trace ids on the log lines."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest

from ragapi.embedded import EmbeddedStack
from tests.conftest import ApiProcess, start_api, stop_api
from tests.support.databases import fresh_database, on_database
from tests.support.documents import make_pdf
from tests.support.jobs import wait_job

pytestmark = pytest.mark.integration
ROUTING = "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: traced}\n"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def _spans(text: str) -> list[dict[str, object]]:
    """The console exporter prints one pretty JSON object per span."""
    spans, depth, start = [], 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0 and start is not None:
                try:
                    obj = json.loads(text[start : i + 1])
                except json.JSONDecodeError:
                    continue
                if "context" in obj and "name" in obj:
                    spans.append(obj)
    return spans


def _console_traced_api(
    stack: EmbeddedStack, tmp_path: Path, env: dict[str, str] | None = None
) -> ApiProcess:
    """A real API process printing its spans as JSON to its log (read after ``stop_api``,
    which flushes the batch span processor)."""
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING)
    return start_api(
        routing,
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "ragline-test", **(env or {})},
        stack,
        tmp_path / "api.log",
    )


def test_query_trace_has_the_span_tree(stack: EmbeddedStack, tmp_path: Path) -> None:
    api = _console_traced_api(stack, tmp_path)
    try:
        key = api.create_key("admin")
        h = {"Authorization": f"Bearer {key}"}
        up = httpx.post(
            f"{api.url}/v1/indexes/traced/documents",
            headers=h,
            timeout=60,
            json={"source": "a.txt", "content": "Traces show where time goes."},
        )
        assert up.status_code == 201
        resp = httpx.post(
            f"{api.url}/v1/indexes/traced/query",
            headers=h,
            timeout=60,
            json={"question": "Where does time go?"},
        )
        assert resp.status_code == 200
        # A caller's W3C trace context is continued, not replaced.
        continued = httpx.post(
            f"{api.url}/v1/indexes/traced/search",
            headers={**h, "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
            timeout=60,
            json={"query": "time"},
        )
        assert continued.status_code == 200
        assert httpx.get(f"{api.url}/healthz").status_code == 200
        assert httpx.get(f"{api.url}/metrics").status_code == 200
        openmetrics = httpx.get(
            f"{api.url}/metrics", headers={"Accept": "application/openmetrics-text"}
        ).text
    finally:
        stop_api(api)  # flushes the batch span processor
    text = (tmp_path / "api.log").read_text()
    spans = _spans(text)
    by_name: dict[str, list[dict[str, object]]] = {}
    for s in spans:
        by_name.setdefault(str(s["name"]), []).append(s)
    server = next(s for s in spans if s["name"] == "POST /v1/indexes/{index}/query")
    trace_id = server["context"]["trace_id"]  # type: ignore[index]
    in_trace = {str(s["name"]) for s in spans if s["context"]["trace_id"] == trace_id}  # type: ignore[index]
    assert {"embed", "retrieve", "fuse", "generate"} <= in_trace
    generate = next(
        s for s in spans if s["name"] == "generate" and s["context"]["trace_id"] == trace_id
    )  # type: ignore[index]
    assert generate["attributes"]["ragline.provider"] == "extractive"  # type: ignore[index]
    assert any(
        str(n).startswith(("SELECT", "INSERT", "BEGIN", "WITH")) or "postgres" in str(n).lower()
        for n in in_trace
    ), in_trace  # asyncpg statements are child spans
    # Only the statements that do the work are spans: no BEGIN/COMMIT, tenant setting or
    # pool reset (they doubled a search's spans).
    statements = [
        str(s["attributes"].get("db.statement", ""))  # type: ignore[attr-defined]
        for s in spans
        if s["context"]["trace_id"] == trace_id  # type: ignore[index]
    ]
    assert any("ragline_text_candidates" in st for st in statements), statements
    # An unfiltered hybrid search is one statement (both candidate lists), a CLIENT span
    # under retrieve.
    retrieve = next(
        s for s in spans if s["name"] == "retrieve" and s["context"]["trace_id"] == trace_id
    )  # type: ignore[index]
    sql = [s for s in spans if s["parent_id"] == retrieve["context"]["span_id"]]  # type: ignore[index]
    assert len(sql) == 1, [s["attributes"].get("db.statement") for s in sql]  # type: ignore[attr-defined]
    assert sql[0]["kind"] == "SpanKind.CLIENT"
    assert sql[0]["attributes"]["db.system"] == "postgresql"  # type: ignore[index]
    assert "ragline_text_candidates" in str(sql[0]["attributes"]["db.statement"])  # type: ignore[index]
    assert "ORDER BY embedding" in str(sql[0]["attributes"]["db.statement"])  # type: ignore[index]
    assert not any(
        st.startswith(("BEGIN", "COMMIT", "SET LOCAL")) or "set_config" in st or "RESET ALL" in st
        for st in statements
    ), statements
    search = next(s for s in spans if s["name"] == "POST /v1/indexes/{index}/search")
    assert search["context"]["trace_id"] == f"0x{CALLER_TRACE}"  # type: ignore[index]
    assert search["parent_id"] == f"0x{CALLER_SPAN}"
    assert search["kind"] == "SpanKind.SERVER"
    assert search["attributes"]["http.route"] == "/v1/indexes/{index}/search"  # type: ignore[index]
    assert search["attributes"]["http.response.status_code"] == 200  # type: ignore[index]
    # Probes and scrapes make no spans.
    assert not [s for s in spans if "healthz" in str(s["name"]) or "metrics" in str(s["name"])]
    # The request's log line carries the same trace id.
    hexid = trace_id.removeprefix("0x")  # type: ignore[union-attr]
    assert re.search(rf'"trace_id": "{hexid}"', text)
    # Latency histograms link a bucket to its trace (OpenMetrics exemplars).
    for metric, labels in (
        ("ragline_http_request_duration_seconds", 'route="/v1/indexes/{index}/search"'),
        ("ragline_retrieval_duration_seconds", 'index="traced"'),
    ):
        assert re.search(
            rf'^{metric}_bucket{{[^}}]*{re.escape(labels)}[^}}]*}} \S+ # {{trace_id="{CALLER_TRACE}"}}',
            openmetrics,
            re.M,
        ), [line for line in openmetrics.splitlines() if line.startswith(metric + "_bucket")]


async def _own_database(stack: EmbeddedStack) -> dict[str, str]:
    """A fresh database on the shared server, so that no other test's API process (their
    workers poll the same job table) claims this test's job."""
    db = await fresh_database(stack, "traced")
    return {
        "RAGLINE_DATABASE_URL": on_database(stack.postgres.app_url, db),
        "RAGLINE_ADMIN_DATABASE_URL": on_database(stack.postgres.url, db),
    }


def test_a_failed_ingest_job_marks_its_span_by_type_only(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    api = _console_traced_api(stack, tmp_path, asyncio.run(_own_database(stack)))
    try:
        headers = {"Authorization": f"Bearer {api.create_key('admin')}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=60) as client:
            resp = client.post(
                "/v1/indexes/traced/documents",
                params={"async": "true"},
                files={"file": ("cut.pdf", make_pdf([["x"]])[:200])},
                data={"source": "cut.pdf"},
            )
            assert resp.status_code == 202, resp.text
            job = wait_job(client, resp.json()["status_url"])
        assert job["state"] == "failed", job
        assert job["error"].startswith("unparseable_document: ")  # the owner sees the message
    finally:
        stop_api(api)
    (span,) = (s for s in _spans((tmp_path / "api.log").read_text()) if s["name"] == "ingest_job")
    assert span["status"]["status_code"] == "ERROR"  # type: ignore[index]
    assert span["attributes"]["error.type"] == "unparseable_document"  # type: ignore[index]
    # The trace gets the type only: no description, no exception event, no message.
    assert "description" not in span["status"]  # type: ignore[operator]
    assert not span["events"]
    assert job["error"].split(": ", 1)[1] not in json.dumps(span)
