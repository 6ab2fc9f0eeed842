"""Retrieval (``/search``) and answers with citations (``/query``, optionally SSE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse

from ragapi.answering import AnswerContext, AnswerDone, AnswerStart
from ragapi.deps import PrincipalDep, ReadableIndex, StateDep
from ragapi.http import request_id_of
from ragapi.retrieval import Hit
from ragapi.router import StreamInterrupted
from ragapi.routes._errors import errors
from ragapi.schemas import (
    Citation,
    Filters,
    QueryRequest,
    QueryResponse,
    SearchRequest,
    SearchResponse,
    SearchResult,
    SkippedProvider,
)
from ragapi.store.search import SearchFilters

router = APIRouter(prefix="/v1/indexes/{index}", tags=["retrieval"])


def to_filters(f: Filters | None) -> SearchFilters | None:
    return SearchFilters(tags=f.tags, metadata=f.metadata) if f else None


def citations(hits: list[Hit]) -> list[Citation]:
    return [Citation(document_id=h.document_id, source=h.source, chunk_id=h.chunk_id) for h in hits]


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Hybrid retrieval only",
    responses=errors(403, 404),
)
async def search(
    body: SearchRequest, state: StateDep, principal: PrincipalDep, record: ReadableIndex
) -> SearchResponse:
    outcome = await state.retriever.search(
        record,
        principal.tenant,
        body.query,
        state.embedder(record),
        top_k=body.top_k,
        ef_search=body.ef_search,
        filters=to_filters(body.filters),
    )
    return SearchResponse(
        results=[
            SearchResult(
                document_id=h.document_id,
                chunk_id=h.chunk_id,
                source=h.source,
                text=h.text,
                score=h.score,
                heading=h.heading,
            )
            for h in outcome.hits
        ],
        strategy=outcome.strategy,
    )


@router.post(
    "/query",
    response_model=QueryResponse,
    summary="Answer a question with citations; `stream: true` answers as Server-Sent Events",
    responses={
        **errors(403, 404, 429, 502),
        200: {"content": {"text/event-stream": {}}, "model": QueryResponse},
    },
)
async def query(
    body: QueryRequest,
    request: Request,
    state: StateDep,
    principal: PrincipalDep,
    record: ReadableIndex,
) -> QueryResponse | EventSourceResponse:
    pool_name, pool = state.chat_pool(record)
    ctx = await state.answerer.context(
        record,
        principal.tenant,
        body.question,
        state.embedder(record),
        top_k=body.top_k,
        filters=to_filters(body.filters),
    )
    if body.stream:
        return EventSourceResponse(
            query_events(state, ctx, pool_name, pool, request_id_of(request.scope)), ping=15
        )
    answer = await state.answerer.answer(ctx, pool_name, pool)
    return QueryResponse(
        answer=answer.text,
        citations=citations(answer.citations),
        provider=answer.provider,
        model=answer.model,
        skipped=[SkippedProvider(provider=s.provider, reason=s.reason) for s in answer.skipped],
        degraded=answer.degraded,
    )


async def query_events(
    state: StateDep, ctx: AnswerContext, pool_name: str, pool: Any, request_id: str
) -> AsyncIterator[dict[str, str]]:
    """``start`` (provider), ``token`` deltas, then ``done`` with citations — or ``error``:
    a failure after the first token is reported, never passed off as a complete answer."""
    try:
        async for item in state.answerer.stream(ctx, pool_name, pool):
            if isinstance(item, AnswerStart):
                data = {
                    "provider": item.provider,
                    "model": item.model,
                    "degraded": item.degraded,
                    "skipped": [{"provider": s.provider, "reason": s.reason} for s in item.skipped],
                }
                yield {"event": "start", "data": json.dumps(data)}
            elif isinstance(item, AnswerDone):
                cites = [c.model_dump(mode="json") for c in citations(item.citations)]
                yield {"event": "done", "data": json.dumps({"citations": cites})}
            else:
                yield {"event": "token", "data": json.dumps({"delta": item})}
    except StreamInterrupted as exc:
        err = {
            "code": "provider_stream_interrupted",
            "message": f"the answer was cut off: {exc.failure.kind} from {exc.failure.provider}",
            "request_id": request_id,
        }
        yield {"event": "error", "data": json.dumps({"error": err})}
