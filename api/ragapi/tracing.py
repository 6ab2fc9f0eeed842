"""OpenTelemetry tracing, configured by the standard ``OTEL_*`` variables.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is
set, or ``OTEL_TRACES_EXPORTER`` names an exporter; the SDK reads the rest (headers,
sampler, resource attributes) itself.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

tracer = trace.get_tracer("ragline")
_configured = False


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


# Probes and scrapes are not traced: they would outnumber the requests.
_UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in _UNTRACED_PATHS


# FastAPI's own OpenTelemetry support makes the server span: named by the route
# template, continuing the caller's W3C trace context. Its per-operation spans
# (dependencies, endpoint, serialization) would triple a request's spans, its metrics
# duplicate our Prometheus ones and its log records our JSON logs; all three are off.
# (opentelemetry-instrumentation-fastapi, used before, wrapped the app in a second ASGI
# layer that matched the path against every route and collected a dozen attributes on
# every request, sampled or not.)
FASTAPI_TELEMETRY: TelemetryConfig = {
    "tracing": True,
    "operation_spans": False,
    "metrics": False,
    "logs": False,
    "exclude": untraced,
}


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()
