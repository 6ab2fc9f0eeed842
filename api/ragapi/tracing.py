"""OpenTelemetry tracing, configured by the standard ``OTEL_*`` variables.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set, or ``OTEL_TRACES_EXPORTER`` names an exporter; the SDK reads the rest (headers,
sampler, resource attributes) itself.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import Attributes

tracer = trace.get_tracer("ragline")
_configured = False


def child_span(name: str, attributes: Attributes = None) -> _ChildSpan:
    """A child of the current span, made current for its ``with`` block: what
    ``tracer.start_as_current_span`` does, minus the spans nobody will see.

    - Under a span that is not recording (an unsampled request, or no request at all)
      it makes no span and yields ``INVALID_SPAN``, whose setters do nothing. Every
      standard sampler would drop that child anyway: the parent-based ones follow the
      parent, and the others decide the same way for the whole trace, so the server
      span already carries the verdict. The SDK would still have run most of
      ``start_span`` (ids, sampler, a non-recording span) before dropping it.
    - One small object instead of three nested generator context managers
      (``ProxyTracer``'s, the SDK tracer's and ``use_span``'s).
    - An exception marks the span an error (``mark_error``: its type, never its message);
      cancellation and ``GeneratorExit`` are not errors.
    """
    return _ChildSpan(name, attributes)


def leaf_span(
    name: str, attributes: Attributes = None, kind: trace.SpanKind = trace.SpanKind.INTERNAL
) -> trace.Span:
    """A started child span that is not made current (the caller ends it), or
    ``INVALID_SPAN`` under a span that is not recording (see ``child_span``)."""
    if not trace.get_current_span().is_recording():
        return trace.INVALID_SPAN
    return tracer.start_span(name, kind=kind, attributes=attributes)


class _ChildSpan:
    __slots__ = ("_attributes", "_name", "_span", "_token")

    def __init__(self, name: str, attributes: Attributes) -> None:
        self._name = name
        self._attributes = attributes
        self._span: trace.Span | None = None
        self._token: object = None

    def __enter__(self) -> trace.Span:
        if not trace.get_current_span().is_recording():
            return trace.INVALID_SPAN
        span = self._span = tracer.start_span(self._name, attributes=self._attributes)
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        if span is None:
            return
        otel_context.detach(self._token)  # type: ignore[arg-type]
        # Exceptions only, as use_span: GeneratorExit and cancellation are not errors.
        if isinstance(exc, Exception):
            mark_error(span, type(exc).__qualname__)
        span.end()


def mark_error(span: trace.Span, error_type: str) -> None:
    """ERROR status and ``error.type``, and nothing more: every span's error policy.

    No message and no exception event (whose stack trace ends with the message): a
    Postgres error may quote the data (a duplicate key's value), a provider's may echo
    the prompt, and trace backends are read more widely than logs. The detail is in the
    request's log lines, found by ``trace_id`` (an unhandled error's masked traceback).
    """
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR))


def exemplar() -> dict[str, str] | None:
    """The current trace id as a histogram exemplar (OpenMetrics), linking a latency
    bucket to a trace; None when no span is recording."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid or not ctx.trace_flags.sampled:
        return None
    return {"trace_id": format(ctx.trace_id, "032x")}


async def _inject_traceparent(request: Any) -> None:
    propagate.inject(request.headers)


def provider_http_client() -> Any:
    """The HTTP client for the openai SDK, injecting W3C ``traceparent`` into every provider
    call. (openai 3 speaks httpx2, which OpenTelemetry's httpx instrumentation does not
    patch, so propagation is done here with a request hook.)"""
    import openai

    return openai.DefaultAsyncHttpxClient(event_hooks={"request": [_inject_traceparent]})


def enabled() -> bool:
    """Whether this process exports spans (``configure_tracing`` installed a provider)."""
    return _configured


def tracing_requested() -> bool:
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(
        exporter
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing(service_name: str = "ragline-api") -> bool:
    """Install the global tracer provider once; returns True when spans are exported."""
    global _configured
    if _configured or not tracing_requested():
        return _configured
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    )
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        # Spans as JSON on stdout: for debugging without a collector.
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(provider)
        _configured = True
        return True
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
    return True


# The server span is made by ``http.RequestContextMiddleware`` (see ``server_span``, which
# gives the measured reason); FastAPI's native telemetry stays off entirely, so it adds no
# ASGI layer. (Its operation spans would triple a request's spans, its metrics duplicate
# our Prometheus ones and its log records our JSON logs.)
FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "operation_spans": False,
    "metrics": False,
    "logs": False,
}


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()
