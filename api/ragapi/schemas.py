"""Request and response bodies, one model per use; the OpenAPI document is the contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class Filters(_In):
    tags: list[str] = Field(default_factory=list, max_length=32, description="All must match.")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="JSON containment on the document's metadata."
    )


class DocumentCreate(_In):
    source: str = Field(min_length=1, max_length=2048, description="Stable name, e.g. a path.")
    content: str = Field(description="The document text (text, Markdown or HTML).")
    content_type: str = Field(default="text/plain", max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=64)


class DocumentUpdate(_In):
    content: str
    content_type: str = Field(default="text/plain", max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=64)


class DocumentWritten(BaseModel):
    id: uuid.UUID
    version: int
    chunks: int
    chunks_written: int


class JobAccepted(BaseModel):
    job_id: uuid.UUID
    state: str
    status_url: str


class JobPublic(BaseModel):
    id: uuid.UUID
    index: str
    state: str = Field(description="queued, running, succeeded, failed (permanent) or dead")
    attempts: int
    max_attempts: int
    progress: dict[str, Any]
    result: DocumentWritten | None = None
    error: str | None = None
    created_at: datetime
    updated_at: datetime


class VersionPublic(BaseModel):
    version: int
    content_type: str
    size_bytes: int
    chunks: int
    created_at: datetime


class DocumentPublic(BaseModel):
    id: uuid.UUID
    index: str
    source: str
    version: int
    content_type: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    versions: list[VersionPublic] = Field(default_factory=list)
    content: str | None = Field(default=None, description="Text of the requested version.")


class DocumentList(BaseModel):
    documents: list[DocumentPublic]
    next_after: str | None = Field(description="Pass as `after` for the next page.")


class SearchRequest(_In):
    query: str = Field(min_length=1, max_length=4000)
    top_k: int | None = Field(default=None, ge=1, le=100)
    ef_search: int | None = Field(default=None, ge=1, le=1000)
    filters: Filters | None = None


class SearchResult(BaseModel):
    document_id: uuid.UUID
    chunk_id: int
    source: str
    text: str
    score: float
    heading: str = ""


class SearchResponse(BaseModel):
    results: list[SearchResult]
    strategy: str = Field(description="How the vector candidates were found.")


class QueryRequest(_In):
    question: str = Field(min_length=1, max_length=4000)
    top_k: int | None = Field(default=None, ge=1, le=50)
    stream: bool = False
    filters: Filters | None = None
    session_id: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Conversation memory: recent turns are used and this one is kept.",
    )


class Citation(BaseModel):
    document_id: uuid.UUID
    source: str
    chunk_id: int


class SkippedProvider(BaseModel):
    provider: str
    reason: str


class QueryResponse(BaseModel):
    answer: str
    citations: list[Citation]
    provider: str
    model: str
    skipped: list[SkippedProvider] = Field(default_factory=list)
    degraded: bool = Field(
        default=False, description="Answered by the last resort because a budget said no."
    )


class AuditEntry(BaseModel):
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str = Field(description="allowed, denied or not_found")
    request_id: str
    detail: dict[str, Any]


class AuditLog(BaseModel):
    entries: list[AuditEntry]


class SessionTurn(BaseModel):
    role: str
    content: str


class SessionPublic(BaseModel):
    session_id: str
    turns: list[SessionTurn]


class RateLimitStatus(BaseModel):
    limit: int = Field(description="Requests allowed per window.")
    remaining: int
    reset_seconds: int = Field(description="Seconds until capacity frees up.")
    window: str = Field(examples=["600 per 1 minute"])


class IndexPublic(BaseModel):
    name: str
    dimensions: int
    distance: str
    embedding_model: str
    content_version: int
    hnsw_index: str | None
    spec: dict[str, Any]


class IndexList(BaseModel):
    indexes: list[IndexPublic]


# ---- OpenAI-compatible chat completions (model = index name)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send fields we ignore
    model: str = Field(description="The index to answer from.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    user: str | None = None
    session_id: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Ragline extension: server-side conversation memory (extra_body).",
    )
