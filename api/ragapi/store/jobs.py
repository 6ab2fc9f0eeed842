"""Ingestion jobs in Postgres: durable, claimed with ``FOR UPDATE SKIP LOCKED``, retried
with backoff, dead-lettered after ``max_attempts``. A running job holds a lease; a worker
that died lets its lease expire and another worker takes the job over."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

QUEUED, RUNNING, SUCCEEDED, FAILED, DEAD = "queued", "running", "succeeded", "failed", "dead"


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    tenant: str
    index_name: str
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int
    max_attempts: int
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    data: bytes | None = None
    trace_context: dict[str, str] | None = None


def _job(row: asyncpg.Record, *, with_data: bool = False) -> Job:
    return Job(
        id=row["id"],
        tenant=row["tenant"],
        index_name=row["index_name"],
        kind=row["kind"],
        payload=json.loads(row["payload"]),
        state=row["state"],
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        progress=json.loads(row["progress"]),
        result=json.loads(row["result"]) if row["result"] else None,
        error=row["error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        data=bytes(row["data"]) if with_data and row["data"] is not None else None,
        trace_context=json.loads(row["trace_context"]) if row["trace_context"] else None,
    )


async def enqueue(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    tenant: str,
    index: str,
    payload: dict[str, Any],
    data: bytes,
    max_attempts: int,
    trace_context: dict[str, str],
) -> Job:
    row = await conn.fetchrow(
        """INSERT INTO ingestion_jobs (id, tenant, index_name, kind, payload, data, max_attempts,
                                       trace_context)
           VALUES ($1, $2, $3, 'ingest', $4::jsonb, $5, $6, $7::jsonb) RETURNING *""",
        uuid.uuid4(),
        tenant,
        index,
        json.dumps(payload),
        data,
        max_attempts,
        json.dumps(trace_context),
    )
    assert row is not None
    return _job(row)


async def get(
    conn: asyncpg.Connection | asyncpg.Pool, tenant: str, job_id: uuid.UUID
) -> Job | None:
    row = await conn.fetchrow(
        "SELECT * FROM ingestion_jobs WHERE id = $1 AND tenant = $2", job_id, tenant
    )
    return _job(row) if row else None


async def claim(conn: asyncpg.Connection | asyncpg.Pool, lease_seconds: float) -> Job | None:
    """Take one due job (or one whose worker's lease expired), atomically across workers."""
    # Across tenants, so through the owner's SECURITY DEFINER function (migration 0003).
    row = await conn.fetchrow("SELECT * FROM ragline_claim_job($1)", lease_seconds)
    return _job(row, with_data=True) if row else None


async def progress(
    conn: asyncpg.Connection | asyncpg.Pool, job_id: uuid.UUID, data: dict[str, Any]
) -> None:
    await conn.execute(
        "UPDATE ingestion_jobs SET progress = $2::jsonb, updated_at = now() WHERE id = $1",
        job_id,
        json.dumps(data),
    )


async def succeed(
    conn: asyncpg.Connection | asyncpg.Pool, job_id: uuid.UUID, result: dict[str, Any]
) -> None:
    # The upload is not needed any more: the document and its versions hold the content.
    await conn.execute(
        """UPDATE ingestion_jobs SET state = 'succeeded', result = $2::jsonb, data = NULL,
                  error = NULL, locked_until = NULL, updated_at = now() WHERE id = $1""",
        job_id,
        json.dumps(result),
    )


async def fail(
    conn: asyncpg.Connection | asyncpg.Pool,
    job: Job,
    error: str,
    *,
    permanent: bool,
    retry_in_seconds: float,
) -> str:
    """Record a failure; returns the new state (queued again, failed or dead)."""
    if permanent:
        state = FAILED
    elif job.attempts >= job.max_attempts:
        state = DEAD
    else:
        state = QUEUED
    await conn.execute(
        """UPDATE ingestion_jobs SET state = $2, error = $3, locked_until = NULL,
                  run_after = now() + make_interval(secs => $4), updated_at = now()
           WHERE id = $1""",
        job.id,
        state,
        error,
        retry_in_seconds,
    )
    return state


async def backlog(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    rows = await conn.fetch("SELECT state, n FROM ragline_job_backlog()")
    return {r["state"]: int(r["n"]) for r in rows}
