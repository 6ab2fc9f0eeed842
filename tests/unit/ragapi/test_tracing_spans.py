"""``child_span`` and ``leaf_span``: the spans of a sampled request, nothing otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from ragapi import tracing
from ragapi.tracing import child_span, leaf_span
from tests.support.spans import recorded_spans


@pytest.fixture()
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as (provider, exported):
        monkeypatch.setattr(tracing, "tracer", provider.get_tracer("test"))
        yield exported


def _names(exported: InMemorySpanExporter) -> list[str]:
    return [s.name for s in exported.get_finished_spans()]


def test_child_span_is_current_inside_and_a_child_of_the_request(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.tracer.start_as_current_span("request") as request:
        with child_span("retrieve", {"ragline.top_k": 5}) as span:
            assert span.is_recording()
            assert trace.get_current_span() is span
            with child_span("fuse") as inner:
                assert trace.get_current_span() is inner
            span.set_attribute("ragline.strategy", "hnsw")
        assert trace.get_current_span() is request  # restored on exit
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert _names(exporter) == ["fuse", "retrieve", "request"]
    retrieve = spans["retrieve"]
    assert retrieve.parent is not None
    assert retrieve.parent.span_id == request.get_span_context().span_id
    assert spans["fuse"].parent.span_id == retrieve.context.span_id  # type: ignore[union-attr]
    assert dict(retrieve.attributes or {}) == {"ragline.top_k": 5, "ragline.strategy": "hnsw"}
    assert retrieve.status.is_unset


def test_child_span_marks_an_exception_by_type_only_and_lets_it_through(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.tracer.start_as_current_span("request") as request:
        with pytest.raises(ValueError, match="secret-row-42"), child_span("retrieve"):
            raise ValueError("duplicate key value (secret-row-42)")
        assert trace.get_current_span() is request
    (retrieve,) = (s for s in exporter.get_finished_spans() if s.name == "retrieve")
    assert retrieve.status.status_code is trace.StatusCode.ERROR
    assert retrieve.attributes is not None
    assert retrieve.attributes["error.type"] == "ValueError"
    # The message may quote data: it is nowhere on the span (no description, no event
    # whose stack trace would end with it).
    assert not retrieve.status.description
    assert not retrieve.events
    assert "secret-row-42" not in retrieve.to_json()


def test_a_cancelled_child_is_ended_but_not_an_error(exporter: InMemorySpanExporter) -> None:
    with (
        tracing.tracer.start_as_current_span("request"),
        pytest.raises(asyncio.CancelledError),
        child_span("generate"),
    ):
        raise asyncio.CancelledError
    (generate,) = (s for s in exporter.get_finished_spans() if s.name == "generate")
    assert generate.end_time is not None
    assert generate.status.is_unset
    assert not generate.events


def test_no_child_spans_outside_a_sampled_trace(exporter: InMemorySpanExporter) -> None:
    with child_span("embed") as orphan:  # no request at all
        assert orphan is trace.INVALID_SPAN
        orphan.set_attribute("ragline.embedding.model", "m")  # a no-op, not an error
        assert leaf_span("generate") is trace.INVALID_SPAN
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("request")
    with unsampled.start_as_current_span("request") as request:
        with child_span("retrieve") as span:
            assert span is trace.INVALID_SPAN
            assert trace.get_current_span() is request  # logs keep the request's trace id
        assert leaf_span("generate") is trace.INVALID_SPAN
    assert _names(exporter) == []


def test_leaf_span_is_started_but_not_made_current(exporter: InMemorySpanExporter) -> None:
    with tracing.tracer.start_as_current_span("request") as request:
        span = leaf_span("generate", {"ragline.stream": True}, kind=trace.SpanKind.CLIENT)
        assert trace.get_current_span() is request
        span.end()
    (generate,) = (s for s in exporter.get_finished_spans() if s.name == "generate")
    assert generate.kind is trace.SpanKind.CLIENT
    assert generate.parent.span_id == request.get_span_context().span_id  # type: ignore[union-attr]
    assert generate.attributes == {"ragline.stream": True}
