"""The request's SERVER span, made by ``http.RequestContextMiddleware``.

The middleware already sees every request once, its route template and its status, so
the span costs only the span. FastAPI's native telemetry, used before (with its
operation spans, metrics and logs off), added a second ASGI layer around every request:
it wrapped each receive and send, parsed the headers twice and updated the span at
each router level. Side by side on this project's two-core machines (two API processes
a variant, 500 interleaved rounds), making the span here took 0.35-0.5 ms off a traced
request of about 21 ms, sampled or not.

Attributes follow the stable HTTP server conventions: ``http.request.method``,
``url.scheme``, ``url.path``, ``url.query``, ``server.address``/``server.port`` (from
``Host``), ``network.protocol.version``, then ``http.route``,
``http.response.status_code`` and, for 5xx or an escaped exception, ``error.type`` and
ERROR status (no message: it may quote the request). The name is ``"{method} {route}"``,
or the method alone when no route matched (a 404), so span names stay bounded.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind
from starlette.types import Scope

from ragapi import __version__, tracing

_tracer = trace.get_tracer("ragline.http", __version__)

# Probes and scrapes are not traced: they would outnumber the requests.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

Headers = Iterable[tuple[bytes, bytes]]


class _AsgiHeaders(Getter[Headers]):
    """W3C trace context and baggage from the raw ASGI headers (lower-case bytes)."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        values = [v.decode("latin-1") for k, v in carrier if k == name]
        if not values:
            return None
        # Repeated baggage headers are one list; the propagator reads the first value.
        return [",".join(values)] if key.lower() == "baggage" else values

    def keys(self, carrier: Headers) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_HEADERS = _AsgiHeaders()


def method_of(scope: Scope) -> str:
    """The method, or ``_OTHER`` for one outside the known set (bounded span names)."""
    method: str = scope.get("method", "")
    return method if method in _METHODS else "_OTHER"


def request_attributes(scope: Scope) -> dict[str, Any]:
    """What the span knows when the request arrives."""
    method = method_of(scope)
    scheme = scope.get("scheme", "http")
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.scheme": scheme,
        "url.path": scope.get("path", ""),
    }
    if method != scope.get("method"):
        attributes["http.request.method_original"] = scope.get("method", "")
    query = scope.get("query_string", b"")
    if query:
        attributes["url.query"] = query.decode("latin-1")
    if scope.get("http_version"):
        attributes["network.protocol.version"] = scope["http_version"]
    host = next((v for k, v in scope.get("headers", ()) if k == b"host"), None)
    if host is not None:
        try:
            url = urlsplit("//" + host.decode("latin-1"))
            address, port = url.hostname, url.port
        except ValueError:  # a malformed Host must not fail the request
            address = port = None
    else:
        address, port = scope.get("server") or (None, None)
    if address:
        attributes["server.address"] = address
        port = port or _DEFAULT_PORTS.get(scheme)
        if port is not None:
            attributes["server.port"] = port
    return attributes


class ServerSpan:
    """Started when a request arrives and current until ``finish``."""

    __slots__ = ("_method", "_token", "span")

    def __init__(self, span: trace.Span, token: object, method: str) -> None:
        self.span = span
        self._token = token
        self._method = method

    @classmethod
    def start(cls, scope: Scope) -> ServerSpan | None:
        """The span continuing the caller's trace; None when tracing is off or the
        path is a probe."""
        if not tracing.enabled() or scope.get("path") in UNTRACED_PATHS:
            return None
        parent = propagate.extract(scope.get("headers", ()), getter=_HEADERS)
        method = method_of(scope)
        span = _tracer.start_span(
            "HTTP" if method == "_OTHER" else method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=request_attributes(scope),
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return cls(span, token, method)

    def finish(self, route: str | None, status: int, error: BaseException | None) -> None:
        """Name it by the route template, record the outcome, end it and restore the
        caller's context. Call it in the context that started it."""
        span = self.span
        if span.is_recording():
            attributes: dict[str, Any] = {"http.response.status_code": status}
            if route is not None:
                attributes["http.route"] = route
                span.update_name(f"{'HTTP' if self._method == '_OTHER' else self._method} {route}")
            span.set_attributes(attributes)
            if error is not None or status >= 500:
                tracing.mark_error(
                    span, type(error).__qualname__ if error is not None else str(status)
                )
        span.end()
        otel_context.detach(self._token)  # type: ignore[arg-type]
