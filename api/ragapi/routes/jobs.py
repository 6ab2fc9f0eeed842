"""Ingestion jobs: progress and outcome of queued uploads."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from ragapi.deps import PrincipalDep, StateDep
from ragapi.errors import NotFound
from ragapi.routes._errors import errors
from ragapi.schemas import DocumentWritten, JobPublic
from ragapi.store import jobs as job_store
from ragapi.store.tenancy import tenant_tx

router = APIRouter(tags=["jobs"])


@router.get(
    "/v1/jobs/{job_id}",
    response_model=JobPublic,
    summary="An ingestion job's progress",
    responses=errors(403, 404),
)
async def get_job(job_id: uuid.UUID, state: StateDep, principal: PrincipalDep) -> JobPublic:
    async with tenant_tx(state.pool, principal.tenant, readonly=True) as conn:
        job = await job_store.get(conn, principal.tenant, job_id)
    if job is None or (principal.indexes and job.index_name not in principal.indexes):
        raise NotFound(f"job {job_id} does not exist")
    return JobPublic(
        id=job.id,
        index=job.index_name,
        state=job.state,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        progress=job.progress,
        result=DocumentWritten.model_validate(job.result) if job.result else None,
        error=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )
