"""Ingestion: upload → parse → chunk → embed only what changed → binary COPY.

The document's SHA-256 short-circuits an unchanged re-upload (no rows written); per-chunk
SHA-256 makes an edit rewrite only the chunks whose text changed. Embedding happens
before the write transaction (it is the slow part); inside the transaction the plan is
made again under the document's lock, and anything a concurrent writer changed in the
meantime is embedded there, so concurrent uploads of one source stay correct.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from ragapi.chunking import Chunk, ChunkingStrategy, chunk_document
from ragapi.embedding.base import Embedder
from ragapi.errors import EmptyDocument, NotFound, PayloadTooLarge
from ragapi.metrics import EMBEDDED_TEXTS, EMBEDDING_DURATION, INGEST_CHUNKS, INGEST_DOCUMENTS
from ragapi.parsing import ParsedDocument, parse_document
from ragapi.store import documents as docs
from ragapi.store.indexes import IndexRecord
from ragapi.store.tenancy import set_tenant
from ragapi.tracing import child_span

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DocumentUpload:
    source: str
    data: bytes
    content_type: str  # canonical (ragapi.parsing.resolve_content_type)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestResult:
    document: docs.StoredDocument
    chunks: int
    chunks_written: int
    changed: bool  # False: identical to the live version, nothing written


def document_hash(upload: DocumentUpload) -> bytes:
    h = hashlib.sha256(upload.data)
    return h.digest()


def prepare(upload: DocumentUpload, record: IndexRecord) -> tuple[ParsedDocument, list[Chunk]]:
    """Parse and chunk (CPU-bound: run it in a thread)."""
    parsed = parse_document(upload.data, upload.content_type)
    spec = record.spec.chunking
    chunks = chunk_document(
        parsed,
        max_tokens=spec.max_tokens,
        overlap_tokens=spec.overlap_tokens,
        strategy=ChunkingStrategy(spec.strategy.value),
    )
    if not chunks:
        raise EmptyDocument("document has no text to index")
    return parsed, chunks


async def embed_texts(embedder: Embedder, texts: Sequence[str], kind: str) -> list[list[float]]:
    if not texts:
        return []
    with child_span(
        "embed", {"ragline.embedding.model": embedder.model, "ragline.embedding.texts": len(texts)}
    ):
        started = time.perf_counter()
        vectors = await embedder.embed(texts)
        EMBEDDING_DURATION.labels(embedder.model, kind).observe(time.perf_counter() - started)
        EMBEDDED_TEXTS.labels(embedder.model, kind).inc(len(texts))
        return vectors


class Ingestor:
    def __init__(self, pool: asyncpg.Pool, max_bytes: int) -> None:
        self._pool = pool
        self._max_bytes = max_bytes

    async def ingest(
        self,
        record: IndexRecord,
        tenant: str,
        upload: DocumentUpload,
        embedder: Embedder,
        *,
        document_id: uuid.UUID | None = None,
    ) -> IngestResult:
        """Create or update the document with ``upload.source`` (or ``document_id``)."""
        if len(upload.data) > self._max_bytes:
            raise PayloadTooLarge(
                f"document is {len(upload.data)} bytes; the limit is {self._max_bytes}"
            )
        parsed, chunks = await asyncio.to_thread(prepare, upload, record)
        digest = document_hash(upload)
        hashes = [c.content_hash for c in chunks]
        source = upload.source
        async with self._pool.acquire() as conn:
            # Optimistic plan in a short read-only transaction, so embedding holds no locks.
            async with conn.transaction(readonly=True):
                await set_tenant(conn, tenant)
                existing = await self._current(conn, record, tenant, source, document_id)
                live = await docs.live_chunks(conn, record, existing.id) if existing else []
            if existing is not None:
                source = existing.source
                if _unchanged(existing, digest, upload):
                    INGEST_DOCUMENTS.labels(record.name, "unchanged").inc()
                    INGEST_CHUNKS.labels(record.name, "reused").inc(len(chunks))
                    return IngestResult(existing, len(chunks), 0, changed=False)
            plan = docs.plan_chunks(live, hashes)
            cache = dict(
                zip(
                    (hashes[i] for i in plan.to_insert),
                    await embed_texts(
                        embedder, [chunks[i].text for i in plan.to_insert], "document"
                    ),
                    strict=True,
                )
            )
            async with conn.transaction():
                await set_tenant(conn, tenant)
                await docs.lock_source(conn, tenant, record.name, source)
                existing = await self._current(conn, record, tenant, source, document_id)
                if existing is not None and _unchanged(existing, digest, upload):
                    return IngestResult(existing, len(chunks), 0, changed=False)
                live = await docs.live_chunks(conn, record, existing.id) if existing else []
                plan = docs.plan_chunks(live, hashes)
                missing = [i for i in plan.to_insert if hashes[i] not in cache]
                if missing:  # a concurrent writer changed the live chunks meanwhile
                    vectors = await embed_texts(
                        embedder, [chunks[i].text for i in missing], "document"
                    )
                    cache.update(zip((hashes[i] for i in missing), vectors, strict=True))
                write = docs.VersionWrite(
                    document_id=existing.id if existing else uuid.uuid4(),
                    tenant=tenant,
                    source=source,
                    version=existing.version + 1 if existing else 1,
                    content_type=upload.content_type,
                    content_hash=digest,
                    title=parsed.title,
                    content=parsed.text,
                    size_bytes=len(upload.data),
                    tags=sorted(set(upload.tags)),
                    metadata=upload.metadata,
                    chunks=[
                        docs.NewChunk(c.heading, c.text, c.token_count, c.content_hash)
                        for c in chunks
                    ],
                    plan=plan,
                    embeddings=[cache[hashes[i]] for i in plan.to_insert],
                    is_new_document=existing is None,
                )
                await docs.write_version(conn, record, write)
                stored = await docs.get_document(conn, tenant, record.name, write.document_id)
        assert stored is not None
        INGEST_DOCUMENTS.labels(record.name, "created" if existing is None else "updated").inc()
        INGEST_CHUNKS.labels(record.name, "written").inc(plan.written)
        INGEST_CHUNKS.labels(record.name, "reused").inc(len(chunks) - plan.written)
        INGEST_CHUNKS.labels(record.name, "retired").inc(len(plan.retire))
        log.info(
            "document_ingested",
            index=record.name,
            document_id=str(stored.id),
            version=stored.version,
            chunks=len(chunks),
            chunks_written=plan.written,
            chunks_retired=len(plan.retire),
        )
        return IngestResult(stored, len(chunks), plan.written, changed=True)

    async def _current(
        self,
        conn: asyncpg.Connection,
        record: IndexRecord,
        tenant: str,
        source: str,
        document_id: uuid.UUID | None,
    ) -> docs.StoredDocument | None:
        if document_id is None:
            return await docs.find_live_by_source(conn, tenant, record.name, source)
        found = await docs.get_document(conn, tenant, record.name, document_id)
        if found is None or found.deleted_at is not None:
            raise NotFound(f"document {document_id} does not exist in index {record.name!r}")
        return found


def _unchanged(existing: docs.StoredDocument, digest: bytes, upload: DocumentUpload) -> bool:
    return (
        existing.content_hash == digest
        and existing.content_type == upload.content_type
        and existing.tags == sorted(set(upload.tags))
        and existing.metadata == upload.metadata
    )
