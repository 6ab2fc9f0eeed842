"""Retrieval (``/search``) and answers with citations (``/query``, optionally SSE)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from opentelemetry import trace
from sse_starlette import EventSourceResponse

from ragapi.answering import AnswerContext, AnswerDone, AnswerStart
from ragapi.cache import answer_key
from ragapi.deps import PrincipalDep, ReadableIndex, StateDep
from ragapi.http import request_id_of
from ragapi.memory import fit_history
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
from ragapi.store.indexes import content_version
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
    response: Response,
) -> QueryResponse | EventSourceResponse:
    tenant = principal.tenant
    pool_name, pool = state.chat_pool(record)
    history = await session_history(state, tenant, body.session_id, record)
    cache_key = None
    # `Cache-Control: no-cache` asks for a fresh answer (which then refreshes the cache).
    fresh = "no-cache" in request.headers.get("cache-control", "").lower()
    if state.cache.enabled and not body.stream and not history:
        # A conversation's answers depend on its history: only stand-alone questions cache.
        version = await content_version(state.pool, record.name)
        params = {
            "top_k": body.top_k,
            "filters": body.filters.model_dump() if body.filters else None,
            "pool": pool_name,
            "pool_spec": pool.model_dump(mode="json"),
        }
        cache_key = answer_key(tenant, record.name, version, body.question, params)
        cached = None if fresh else await state.cache.get(cache_key)
        trace.get_current_span().set_attribute("ragline.cache_hit", cached is not None)
        if cached is not None:
            response.headers["X-Ragline-Cache"] = "hit"
            if body.session_id:
                await state.memory.append(tenant, body.session_id, body.question, cached["answer"])
            return QueryResponse.model_validate(cached)
    ctx = await state.answerer.context(
        record,
        tenant,
        body.question,
        state.embedder(record),
        top_k=body.top_k,
        filters=to_filters(body.filters),
        history=history,
    )
    if body.stream:
        return EventSourceResponse(
            query_events(
                state,
                ctx,
                pool_name,
                pool,
                request_id_of(request.scope),
                tenant=tenant,
                session_id=body.session_id,
            ),
            ping=15,
        )
    answer = await state.answerer.answer(ctx, pool_name, pool)
    result = QueryResponse(
        answer=answer.text,
        citations=citations(answer.citations),
        provider=answer.provider,
        model=answer.model,
        skipped=[SkippedProvider(provider=s.provider, reason=s.reason) for s in answer.skipped],
        degraded=answer.degraded,
    )
    if body.session_id:
        await state.memory.append(tenant, body.session_id, body.question, answer.text)
    if cache_key is not None and not answer.degraded and not answer.skipped:
        # Only answers from the first choice: a fallback answer must not outlive the fault.
        await state.cache.put(cache_key, result.model_dump(mode="json"))
    if cache_key is not None:
        response.headers["X-Ragline-Cache"] = "miss"
    return result


async def session_history(
    state: StateDep, tenant: str, session_id: str | None, record: Any
) -> list[dict[str, str]]:
    if not session_id:
        return []
    turns = fit_history(
        await state.memory.history(tenant, session_id), record.spec.answer.max_context_tokens // 3
    )
    return [{"role": t.role, "content": t.content} for t in turns]


async def query_events(
    state: StateDep,
    ctx: AnswerContext,
    pool_name: str,
    pool: Any,
    request_id: str,
    *,
    tenant: str,
    session_id: str | None,
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
                if session_id:
                    await state.memory.append(tenant, session_id, ctx.request.question, item.text)
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
