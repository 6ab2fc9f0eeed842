"""The server span made by ``RequestContextMiddleware``: named by the route template,
continuing the caller's trace, marking server errors, absent for probes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI, Response
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragapi import server_span, tracing
from ragapi.http import RequestContextMiddleware
from ragapi.tracing import FASTAPI_TELEMETRY, child_span
from tests.support.spans import recorded_spans

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture()
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as (provider, exported):
        monkeypatch.setattr(server_span, "_tracer", provider.get_tracer("test"))
        monkeypatch.setattr(tracing, "tracer", provider.get_tracer("test"))
        monkeypatch.setattr(tracing, "_configured", True)
        yield exported


def _app() -> FastAPI:
    app = FastAPI(telemetry=FASTAPI_TELEMETRY)

    @app.get("/v1/things/{thing}")
    async def thing(thing: int) -> dict[str, int]:
        with child_span("retrieve"):
            return {"thing": thing}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/unavailable")
    async def unavailable() -> Response:
        return Response(status_code=503)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-looking detail")

    app.add_middleware(RequestContextMiddleware)
    return app


@pytest.fixture()
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ragline.test:8080") as c:
        yield c


def _servers(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]


async def test_a_request_is_one_server_span_named_by_its_route(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    resp = await client.get(
        "/v1/things/7?full=1",
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )
    assert resp.status_code == 200
    (span,) = _servers(exporter)
    assert span.name == "GET /v1/things/{thing}"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/v1/things/7",
        "url.query": "full=1",
        "network.protocol.version": "1.1",
        "server.address": "ragline.test",
        "server.port": 8080,
        "http.route": "/v1/things/{thing}",
        "http.response.status_code": 200,
    }
    assert span.status.is_unset
    # It continues the caller's trace, and the endpoint's spans are its children.
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN
    assert span.parent.is_remote
    (retrieve,) = (s for s in exporter.get_finished_spans() if s.name == "retrieve")
    assert retrieve.parent is not None and retrieve.parent.span_id == span.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # the context was restored


async def test_an_unmatched_path_is_named_by_its_method_alone(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    assert (await client.get("/v1/nowhere/42")).status_code == 404
    (span,) = _servers(exporter)
    assert span.name == "GET"  # raw paths would make unbounded span names
    assert "http.route" not in (span.attributes or {})
    assert (span.attributes or {})["http.response.status_code"] == 404
    assert span.status.is_unset  # a client error is not the server's


async def test_server_errors_are_marked_without_their_message(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter
) -> None:
    assert (await client.get("/unavailable")).status_code == 503
    assert (await client.get("/boom")).status_code == 500
    unavailable, boom = _servers(exporter)
    assert (unavailable.attributes or {})["error.type"] == "503"
    assert unavailable.status.status_code is trace.StatusCode.ERROR
    assert (boom.attributes or {})["error.type"] == "RuntimeError"
    assert (boom.attributes or {})["http.response.status_code"] == 500
    assert boom.status.status_code is trace.StatusCode.ERROR
    assert boom.status.description is None
    assert "secret-looking" not in str(boom.to_json())


async def test_probes_and_a_process_without_tracing_make_no_span(
    client: httpx.AsyncClient, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.get("/healthz")).status_code == 200
    monkeypatch.setattr(tracing, "_configured", False)
    assert (await client.get("/v1/things/1")).status_code == 200
    assert exporter.get_finished_spans() == ()


def test_unknown_methods_keep_span_names_bounded() -> None:
    scope = {"type": "http", "method": "PURGE", "scheme": "https", "path": "/", "headers": []}
    attributes = server_span.request_attributes(scope)
    assert attributes["http.request.method"] == "_OTHER"
    assert attributes["http.request.method_original"] == "PURGE"
    assert server_span.method_of(scope) == "_OTHER"
    # No Host header: the listening socket's address; a malformed Host: none at all.
    assert (
        server_span.request_attributes({**scope, "server": ("10.0.0.5", 8443)})["server.port"]
        == 8443
    )
    bad = {**scope, "headers": [(b"host", b"[::1")]}
    assert "server.address" not in server_span.request_attributes(bad)
