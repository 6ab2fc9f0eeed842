"""The ingestion worker: claims jobs from Postgres and runs the same ingestion as the
synchronous path. It runs inside the API pods (``RAGLINE_INGEST_WORKERS``, default 1) or
alone as ``ragline worker`` when ingestion must scale apart from queries."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import TYPE_CHECKING, Any

import structlog
from opentelemetry import propagate, trace

from ragapi.errors import RaglineError
from ragapi.ingest import DocumentUpload
from ragapi.metrics import INGEST_JOBS, INGEST_JOBS_BACKLOG
from ragapi.store import jobs as job_store
from ragapi.store.tenancy import tenant_tx
from ragapi.tracing import mark_error, tracer

if TYPE_CHECKING:
    from ragapi.state import AppState

log = structlog.get_logger(__name__)
LEASE_SECONDS = 600.0
IDLE_SECONDS = 0.5
BACKLOG_EVERY_SECONDS = 5.0


def retry_delay(attempts: int) -> float:
    """Exponential backoff with full jitter, capped at 5 minutes."""
    return float(random.uniform(0.5, 1.0) * min(300.0, 2.0**attempts))


def trace_carrier() -> dict[str, str]:
    """The current trace context as W3C headers, stored with the job."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


class IngestWorker:
    def __init__(self, state: AppState, name: str = "worker") -> None:
        self.state = state
        self.name = name

    async def run_once(self) -> bool:
        """Process one job if one is due; True when a job was processed."""
        job = await job_store.claim(self.state.pool, LEASE_SECONDS)
        if job is None:
            return False
        log.info("job_claimed", job_id=str(job.id), attempts=job.attempts, index=job.index_name)
        parent = trace.get_current_span(propagate.extract(job.trace_context or {}))
        links = (
            [trace.Link(parent.get_span_context())] if parent.get_span_context().is_valid else []
        )
        with tracer.start_as_current_span(
            "ingest_job", links=links, record_exception=False, set_status_on_exception=False
        ) as span:
            span.set_attribute("ragline.job_id", str(job.id))
            span.set_attribute("ragline.index", job.index_name)
            span.set_attribute("ragline.attempt", job.attempts)
            try:
                await self._process(job)
            except Exception as exc:  # recording the outcome (Postgres gone): the type only
                mark_error(span, type(exc).__qualname__)
                raise
        return True

    async def _process(self, job: job_store.Job) -> None:
        p: dict[str, Any] = job.payload
        try:
            record = await self.state.index(job.index_name)
            async with tenant_tx(self.state.pool, job.tenant) as conn:
                await job_store.progress(conn, job.id, {"stage": "ingesting"})
            upload = DocumentUpload(
                source=p["source"],
                data=job.data or b"",
                content_type=p["content_type"],
                tags=p.get("tags", []),
                metadata=p.get("metadata", {}),
            )
            import uuid

            doc_id = uuid.UUID(p["document_id"]) if p.get("document_id") else None
            result = await self.state.ingestor.ingest(
                record, job.tenant, upload, self.state.embedder(record), document_id=doc_id
            )
        except RaglineError as exc:
            permanent = exc.status_code < 500
            await self._failed(job, exc.code, f"{exc.code}: {exc.message}", permanent)
            return
        except Exception as exc:  # Postgres, network: worth another try
            kind = type(exc).__qualname__
            await self._failed(job, kind, f"{kind}: {exc}", False)
            return
        self.state.forget_index(job.index_name)
        async with tenant_tx(self.state.pool, job.tenant) as conn:
            await job_store.succeed(
                conn,
                job.id,
                {
                    "id": str(result.document.id),
                    "version": result.document.version,
                    "chunks": result.chunks,
                    "chunks_written": result.chunks_written,
                },
            )
        INGEST_JOBS.labels("succeeded").inc()
        log.info("job_succeeded", job_id=str(job.id), document_id=str(result.document.id))

    async def _failed(
        self, job: job_store.Job, error_type: str, error: str, permanent: bool
    ) -> None:
        # The job's status and log keep the message (its owner reads them); the trace gets
        # the type only, as every span (tracing.mark_error).
        mark_error(trace.get_current_span(), error_type)
        async with tenant_tx(self.state.pool, job.tenant) as conn:
            new_state = await job_store.fail(
                conn, job, error, permanent=permanent, retry_in_seconds=retry_delay(job.attempts)
            )
        INGEST_JOBS.labels("retried" if new_state == job_store.QUEUED else new_state).inc()
        log.warning(
            "job_failed", job_id=str(job.id), state=new_state, attempts=job.attempts, error=error
        )

    async def run(self, stop: asyncio.Event) -> None:
        last_backlog = 0.0
        while not stop.is_set():
            try:
                busy = await self.run_once()
                if time.monotonic() - last_backlog > BACKLOG_EVERY_SECONDS:
                    last_backlog = time.monotonic()
                    counts = await job_store.backlog(self.state.pool)
                    for s in (
                        job_store.QUEUED,
                        job_store.RUNNING,
                        job_store.FAILED,
                        job_store.DEAD,
                    ):
                        INGEST_JOBS_BACKLOG.labels(s).set(counts.get(s, 0))
            except Exception:  # the loop must outlive a database blip
                log.exception("worker_loop_error")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), IDLE_SECONDS)
