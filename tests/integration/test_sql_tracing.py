"""The pool's traced connection against real Postgres: one CLIENT span per statement with
the database attributes, none for plumbing or the pool's reset, errors marked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from ragapi.embedded import EmbeddedStack
from ragapi.store import sql_tracing
from ragapi.store.db import create_pool
from ragapi.store.sql_tracing import TracedConnection, operation, plumbing
from tests.support.spans import recorded_spans

pytestmark = pytest.mark.integration


@pytest.fixture()
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as (provider, exporter):
        monkeypatch.setattr(sql_tracing, "_tracer", provider.get_tracer("test"))
        yield exporter


@pytest.fixture()
async def pools(stack: EmbeddedStack) -> AsyncIterator[tuple[asyncpg.Pool, asyncpg.Pool]]:
    """A traced pool and a plain one, a connection each."""
    traced = await create_pool(stack.postgres.app_url, min_size=1, max_size=1, traced=True)
    plain = await create_pool(stack.postgres.app_url, min_size=1, max_size=1)
    try:
        yield traced, plain
    finally:
        await traced.close()
        await plain.close()


def _sql(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.attributes.get("db.system")]


# The request's span: statements are traced only inside a sampled trace.
_requests = TracerProvider().get_tracer("request")


def test_operation_names_a_span_by_its_first_keyword() -> None:
    assert operation("select 1") == "SELECT"
    assert operation("\n  WITH x AS (SELECT 1) SELECT * FROM x") == "WITH"
    assert operation("   ") == "postgresql"


async def test_statements_are_client_spans_under_the_current_span(
    stack: EmbeddedStack, spans: InMemorySpanExporter
) -> None:
    conn = await asyncpg.connect(stack.postgres.app_url, connection_class=TracedConnection)
    try:
        with _requests.start_as_current_span("retrieve") as parent:
            assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
            assert (await conn.fetchrow("SELECT 'a' AS x"))["x"] == "a"
            assert len(await conn.fetch("SELECT generate_series(1, 3)")) == 3
            assert await conn.execute("SELECT 1") == "SELECT 1"
            with suppress_instrumentation():
                await conn.execute("SET application_name = 'plumbing'")
    finally:
        await conn.close()
    sql = _sql(spans)
    assert [s.name for s in sql] == ["SELECT"] * 4  # the suppressed statement made none
    first = sql[0]
    assert first.kind is trace.SpanKind.CLIENT
    assert first.parent is not None and first.parent.span_id == parent.get_span_context().span_id
    assert first.attributes["db.statement"] == "SELECT $1::int + 1"
    assert first.attributes["db.name"] == stack.postgres.app_url.rsplit("/", 1)[1]
    assert first.attributes["db.user"] == "ragline_app"
    assert first.attributes["net.peer.name"] == "127.0.0.1"
    assert first.attributes["net.peer.port"] == int(
        stack.postgres.app_url.rsplit(":", 1)[1].split("/")[0]
    )
    assert "db.statement.parameters" not in first.attributes  # values never leave the process
    assert all(s.status.is_ok for s in sql)


async def test_a_failed_statement_marks_its_span_and_still_raises(
    stack: EmbeddedStack, spans: InMemorySpanExporter
) -> None:
    conn = await asyncpg.connect(stack.postgres.app_url, connection_class=TracedConnection)
    try:
        with (
            _requests.start_as_current_span("request"),
            pytest.raises(asyncpg.UndefinedTableError),
        ):
            await conn.fetch("SELECT * FROM no_such_table")
    finally:
        await conn.close()
    (span,) = _sql(spans)
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.attributes["error.type"] == "UndefinedTableError"
    assert span.status.description is None  # the message may quote data: never exported


async def test_traced_pool_spans_only_the_work_and_untraced_pool_is_plain(
    pools: tuple[asyncpg.Pool, asyncpg.Pool], spans: InMemorySpanExporter
) -> None:
    traced, plain = pools
    with _requests.start_as_current_span("request"):
        for _ in range(3):  # each release resets the connection: no span for that
            async with traced.acquire() as conn:
                assert isinstance(conn._con, TracedConnection)  # type: ignore[attr-defined]
                await conn.fetchval("SELECT 1")
        async with plain.acquire() as conn:
            assert type(conn._con) is asyncpg.Connection  # type: ignore[attr-defined]
            await conn.fetchval("SELECT 2")
    assert [s.attributes["db.statement"] for s in _sql(spans)] == ["SELECT 1"] * 3


async def test_no_spans_outside_a_sampled_trace(
    stack: EmbeddedStack, spans: InMemorySpanExporter
) -> None:
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("request")
    conn = await asyncpg.connect(stack.postgres.app_url, connection_class=TracedConnection)
    try:
        assert await conn.fetchval("SELECT 1") == 1  # no trace at all (a health check)
        with unsampled.start_as_current_span("request") as request:
            assert not request.is_recording()
            assert await conn.fetchval("SELECT 2") == 2  # its spans would be dropped anyway
        with _requests.start_as_current_span("request"):
            assert await conn.fetchval("SELECT 3") == 3
    finally:
        await conn.close()
    assert [s.attributes["db.statement"] for s in _sql(spans)] == ["SELECT 3"]


async def test_plumbing_makes_no_span_through_the_pool_and_is_a_no_op_untraced(
    pools: tuple[asyncpg.Pool, asyncpg.Pool], spans: InMemorySpanExporter
) -> None:
    traced, plain = pools
    with _requests.start_as_current_span("request"):
        async with traced.acquire() as conn:  # the pool's proxy, not the connection
            with plumbing(conn):
                await conn.execute("SET application_name = 'plumbing'")
                with plumbing(conn):  # nested: still quiet, and quiet until the outer ends
                    await conn.execute("SELECT 'nested'")
                await conn.execute("SELECT 'still quiet'")
            assert await conn.fetchval("SELECT 'work'") == "work"
        async with plain.acquire() as conn:
            with plumbing(conn):
                assert await conn.fetchval("SELECT 2") == 2
    assert [s.attributes["db.statement"] for s in _sql(spans)] == ["SELECT 'work'"]
