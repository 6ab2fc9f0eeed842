"""``POST /v1/chat/completions``: OpenAI-compatible, the model is the index name.

Any OpenAI client works unchanged. The last user message is the question; earlier
turns go to the provider as history. Citations ride along in an extra ``citations``
field (OpenAI clients ignore unknown fields); streaming follows OpenAI's chunk format
and ends with ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse

from ragapi.answering import AnswerContext, AnswerDone, AnswerStart
from ragapi.contract import is_valid_name
from ragapi.deps import PrincipalDep, StateDep
from ragapi.errors import NotFound, ValidationFailed
from ragapi.http import request_id_of
from ragapi.router import StreamInterrupted
from ragapi.routes._errors import errors
from ragapi.routes.search import citations, session_history
from ragapi.schemas import ChatCompletionRequest, ChatMessage

router = APIRouter(tags=["openai-compatible"])


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    if isinstance(message.content, list):  # content parts: keep the text ones
        return "".join(str(p.get("text", "")) for p in message.content if p.get("type") == "text")
    return ""


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The question (last user message) and the earlier user/assistant turns."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None or not _text(messages[last_user]).strip():
        raise ValidationFailed("messages: needs a user message with text")
    history = [
        {"role": m.role, "content": _text(m)}
        for m in messages[:last_user]
        if m.role in ("user", "assistant") and _text(m)
    ]
    return _text(messages[last_user]), history


@router.post(
    "/v1/chat/completions",
    summary="OpenAI-compatible chat (model = index name)",
    responses=errors(403, 404, 429, 502),
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, state: StateDep, principal: PrincipalDep
) -> Any:
    if not is_valid_name(body.model):
        raise NotFound(f"index {body.model!r} does not exist")
    principal.require_index(body.model)
    record = await state.index(body.model)
    question, history = split_messages(body.messages)
    pool_name, pool = state.chat_pool(record)
    remembered = await session_history(state, principal.tenant, body.session_id, record)
    history = remembered + history
    ctx = await state.answerer.context(
        record,
        principal.tenant,
        question,
        state.embedder(record),
        top_k=None,
        filters=None,
        history=history,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
    )
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        return EventSourceResponse(
            _chunks(
                state,
                ctx,
                pool_name,
                pool,
                body.model,
                completion_id,
                created,
                request_id_of(request.scope),
                remember=(principal.tenant, body.session_id) if body.session_id else None,
            ),
            ping=15,
        )
    answer = await state.answerer.answer(ctx, pool_name, pool)
    if body.session_id:
        await state.memory.append(principal.tenant, body.session_id, question, answer.text)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": answer.usage.input_tokens,
            "completion_tokens": answer.usage.output_tokens,
            "total_tokens": answer.usage.input_tokens + answer.usage.output_tokens,
        },
        "citations": [c.model_dump(mode="json") for c in citations(answer.citations)],
        "provider": answer.provider,
        "degraded": answer.degraded,
    }


async def _chunks(
    state: StateDep,
    ctx: AnswerContext,
    pool_name: str,
    pool: Any,
    model: str,
    cid: str,
    created: int,
    request_id: str,
    remember: tuple[str, str] | None = None,
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return json.dumps(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
        )

    try:
        async for item in state.answerer.stream(ctx, pool_name, pool):
            if isinstance(item, AnswerStart):
                yield chunk({"role": "assistant", "content": ""}, provider=item.provider)
            elif isinstance(item, AnswerDone):
                if remember:
                    await state.memory.append(*remember, ctx.request.question, item.text)
                cites = [c.model_dump(mode="json") for c in citations(item.citations)]
                yield chunk({}, "stop", citations=cites)
            else:
                yield chunk({"content": item})
    except StreamInterrupted as exc:
        # OpenAI streams report errors as a data line with an `error` object.
        yield json.dumps(
            {
                "error": {
                    "code": "provider_stream_interrupted",
                    "type": "server_error",
                    "message": (
                        f"the answer was cut off: {exc.failure.kind} from {exc.failure.provider}"
                    ),
                    "request_id": request_id,
                }
            }
        )
        return
    yield "[DONE]"
