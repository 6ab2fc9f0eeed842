"""Documents: upload (JSON or multipart), read, new version (PUT), soft delete."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from ragapi import audit
from ragapi.auth import Principal
from ragapi.deps import PrincipalDep, ReadableIndex, StateDep, WritableIndex
from ragapi.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from ragapi.http import request_id_of
from ragapi.ingest import DocumentUpload, IngestResult
from ragapi.parsing import resolve_content_type
from ragapi.routes._errors import errors
from ragapi.schemas import (
    DocumentCreate,
    DocumentList,
    DocumentPublic,
    DocumentUpdate,
    DocumentWritten,
    JobAccepted,
    VersionPublic,
)
from ragapi.store import documents as docs
from ragapi.store import jobs as job_store
from ragapi.store.tenancy import tenant_tx
from ragapi.worker import trace_carrier

router = APIRouter(prefix="/v1/indexes/{index}/documents", tags=["documents"])

_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/DocumentCreate"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "source": {"type": "string", "description": "Defaults to the filename."},
                        "content_type": {"type": "string"},
                        "tags": {"type": "string", "description": "Comma-separated."},
                        "metadata": {"type": "string", "description": "A JSON object."},
                    },
                }
            },
        },
    }
}


def _written(result: IngestResult) -> DocumentWritten:
    return DocumentWritten(
        id=result.document.id,
        version=result.document.version,
        chunks=result.chunks,
        chunks_written=result.chunks_written,
    )


def _from_json(model: type[DocumentCreate] | type[DocumentUpdate], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"{loc}: {first['msg']}" if loc else first["msg"]) from exc


async def _read_upload(request: Request, *, needs_source: bool) -> DocumentUpload:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        raw = await request.body()
        body = _from_json(DocumentCreate if needs_source else DocumentUpdate, raw)
        return DocumentUpload(
            source=getattr(body, "source", ""),
            data=body.content.encode(),
            content_type=resolve_content_type(body.content_type, None),
            tags=body.tags,
            metadata=body.metadata,
        )
    if ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=16)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ValidationFailed("file: a multipart field named 'file' is required")
        data = await file.read()
        source = str(form.get("source") or file.filename or "")
        if needs_source and not source:
            raise ValidationFailed("source: required (or a filename on the file part)")
        declared = form.get("content_type") or file.content_type
        tags_raw = str(form.get("tags") or "")
        metadata: Any = {}
        if form.get("metadata"):
            try:
                metadata = json.loads(str(form["metadata"]))
            except json.JSONDecodeError as exc:
                raise ValidationFailed(f"metadata: not valid JSON ({exc.msg})") from exc
            if not isinstance(metadata, dict):
                raise ValidationFailed("metadata: must be a JSON object")
        return DocumentUpload(
            source=source,
            data=data,
            content_type=resolve_content_type(str(declared) if declared else None, file.filename),
            tags=[t.strip() for t in tags_raw.split(",") if t.strip()],
            metadata=metadata,
        )
    raise UnsupportedMediaType(
        f"send application/json or multipart/form-data, not {ctype or 'no content type'}"
    )


async def _enqueue(
    state: StateDep,
    tenant: str,
    record: Any,
    upload: DocumentUpload,
    document_id: uuid.UUID | None = None,
) -> JSONResponse:
    async with tenant_tx(state.pool, tenant) as conn:
        job = await job_store.enqueue(
            conn,
            tenant=tenant,
            index=record.name,
            payload={
                "source": upload.source,
                "content_type": upload.content_type,
                "tags": upload.tags,
                "metadata": upload.metadata,
                "document_id": str(document_id) if document_id else None,
            },
            data=upload.data,
            max_attempts=state.settings.ingest_max_attempts,
            trace_context=trace_carrier(),
        )
    body = JobAccepted(job_id=job.id, state=job.state, status_url=f"/v1/jobs/{job.id}")
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": body.status_url},
    )


def _wants_job(state: StateDep, upload: DocumentUpload, asynchronous: bool | None) -> bool:
    if asynchronous is not None:
        return asynchronous
    return len(upload.data) > state.settings.ingest_async_bytes


AsyncParam = Annotated[
    bool | None,
    Query(
        alias="async",
        description="Queue as a job (202); default: only uploads over RAGLINE_INGEST_ASYNC_BYTES",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentWritten,
    summary="Upload a document (JSON or multipart); an unchanged re-upload writes nothing",
    responses={
        200: {"model": DocumentWritten, "description": "Unchanged: nothing written"},
        202: {"model": JobAccepted, "description": "Queued as an ingestion job"},
        **errors(403, 404, 413, 415),
    },
    openapi_extra=_UPLOAD_BODY,
)
async def upload_document(
    request: Request,
    response: Response,
    state: StateDep,
    principal: PrincipalDep,
    record: WritableIndex,
    asynchronous: AsyncParam = None,
) -> DocumentWritten | JSONResponse:
    upload = await _read_upload(request, needs_source=True)
    if _wants_job(state, upload, asynchronous):
        if len(upload.data) > state.settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"document is {len(upload.data)} bytes; the limit is "
                f"{state.settings.max_upload_bytes}"
            )
        accepted = await _enqueue(state, principal.tenant, record, upload)
        await _audit(
            request, state, principal, "document.enqueue", f"{record.name}/{upload.source}"
        )
        return accepted
    result = await state.ingestor.ingest(record, principal.tenant, upload, state.embedder(record))
    state.forget_index(record.name)
    await _audit(
        request,
        state,
        principal,
        "document.upload",
        f"{record.name}/{result.document.id}",
        version=result.document.version,
        changed=result.changed,
    )
    if not result.changed:
        response.status_code = status.HTTP_200_OK
    return _written(result)


async def _audit(
    request: Request,
    state: StateDep,
    principal: Principal,
    action: str,
    target: str,
    **detail: Any,
) -> None:
    await audit.record(
        state.pool,
        principal,
        action=action,
        target=target,
        outcome="allowed",
        request_id=request_id_of(request.scope),
        detail=detail,
    )


@router.get(
    "",
    response_model=DocumentList,
    summary="List live documents by source",
    responses=errors(403, 404),
)
async def list_documents(
    state: StateDep,
    principal: PrincipalDep,
    record: ReadableIndex,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=2048)] = None,
) -> DocumentList:
    async with tenant_tx(state.pool, principal.tenant, readonly=True) as conn:
        found = await docs.list_documents(
            conn, principal.tenant, record.name, limit=limit, after=after
        )
    return DocumentList(
        documents=[_public(d, record.name) for d in found],
        next_after=found[-1].source if len(found) == limit else None,
    )


def _public(d: docs.StoredDocument, index: str) -> DocumentPublic:
    return DocumentPublic(
        id=d.id,
        index=index,
        source=d.source,
        version=d.version,
        content_type=d.content_type,
        tags=d.tags,
        metadata=d.metadata,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


async def _live(
    conn: asyncpg.Connection, tenant: str, index: str, document_id: uuid.UUID
) -> docs.StoredDocument:
    found = await docs.get_document(conn, tenant, index, document_id)
    if found is None or found.deleted_at is not None:
        raise NotFound(f"document {document_id} does not exist in index {index!r}")
    return found


@router.get(
    "/{document_id}",
    response_model=DocumentPublic,
    summary="A document and its versions",
    responses=errors(403, 404),
)
async def get_document(
    document_id: uuid.UUID,
    state: StateDep,
    principal: PrincipalDep,
    record: ReadableIndex,
    version: Annotated[int | None, Query(ge=1, description="Include this version's text")] = None,
) -> DocumentPublic:
    async with tenant_tx(state.pool, principal.tenant, readonly=True) as conn:
        found = await _live(conn, principal.tenant, record.name, document_id)
        versions = await docs.list_versions(conn, found.id)
        wanted = version or found.version
        row = await docs.get_version(conn, found.id, wanted)
    public = _public(found, record.name)
    public.versions = [VersionPublic(**dict(r)) for r in versions]
    if row is None:
        raise NotFound(f"document {document_id} has no version {wanted}")
    public.content = row["content"]
    return public


@router.put(
    "/{document_id}",
    response_model=DocumentWritten,
    summary="Upload a new version (JSON or multipart)",
    responses={**errors(403, 404, 413, 415), 202: {"model": JobAccepted}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/DocumentUpdate"}},
                "multipart/form-data": _UPLOAD_BODY["requestBody"]["content"][
                    "multipart/form-data"
                ],
            },
        }
    },
)
async def put_document(
    document_id: uuid.UUID,
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    record: WritableIndex,
    asynchronous: AsyncParam = None,
) -> DocumentWritten | JSONResponse:
    upload = await _read_upload(request, needs_source=False)
    async with tenant_tx(state.pool, principal.tenant, readonly=True) as conn:
        current = await _live(conn, principal.tenant, record.name, document_id)
    if upload.source and upload.source != current.source:
        raise BadRequest("a document's source cannot change; upload a new document instead")
    if _wants_job(state, upload, asynchronous):
        upload = DocumentUpload(
            current.source, upload.data, upload.content_type, upload.tags, upload.metadata
        )
        accepted = await _enqueue(state, principal.tenant, record, upload, document_id)
        await _audit(request, state, principal, "document.enqueue", f"{record.name}/{document_id}")
        return accepted
    result = await state.ingestor.ingest(
        record, principal.tenant, upload, state.embedder(record), document_id=document_id
    )
    state.forget_index(record.name)
    await _audit(
        request,
        state,
        principal,
        "document.update",
        f"{record.name}/{document_id}",
        version=result.document.version,
        changed=result.changed,
    )
    return _written(result)


@router.delete(
    "/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Soft-delete: versions are kept, the document leaves every result",
    responses=errors(403, 404),
)
async def delete_document(
    document_id: uuid.UUID,
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    record: WritableIndex,
) -> Response:
    async with tenant_tx(state.pool, principal.tenant) as conn:
        if not await docs.soft_delete(conn, record, principal.tenant, document_id):
            raise NotFound(f"document {document_id} does not exist in index {record.name!r}")
    state.forget_index(record.name)
    await _audit(request, state, principal, "document.delete", f"{record.name}/{document_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
