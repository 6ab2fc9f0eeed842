"""Conversation memory in Redis: the last N turns of a session, per tenant, 30-day TTL.

A question with a ``session_id`` gets the session's recent turns as history (trimmed,
oldest first, to fit the token budget), and its answer is appended. When Redis is down
memory is skipped (the answer still comes, without history), never an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)
TTL_SECONDS = 30 * 24 * 3600
DEFAULT_TURNS = 20


@dataclass(frozen=True)
class Turn:
    role: str  # user | assistant
    content: str


def session_key(tenant: str, session_id: str) -> str:
    return f"ragline:session:{{{tenant}}}:{session_id}"


def fit_history(turns: list[Turn], max_tokens: int) -> list[Turn]:
    """The most recent turns whose (estimated) tokens fit the budget, in order."""
    kept: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        cost = len(turn.content) // 4 + 4  # about 4 characters per token, plus the role
        if used + cost > max_tokens:
            break
        kept.append(turn)
        used += cost
    return list(reversed(kept))


class ConversationMemory:
    def __init__(self, redis: aioredis.Redis, turns: int = DEFAULT_TURNS) -> None:
        self._redis = redis
        self._turns = turns

    async def history(self, tenant: str, session_id: str) -> list[Turn]:
        try:
            raw = await self._redis.lrange(session_key(tenant, session_id), 0, -1)
        except RedisError as exc:
            log.warning("memory_unavailable", error=type(exc).__name__)
            return []
        return [Turn(**json.loads(r)) for r in raw]

    async def append(self, tenant: str, session_id: str, question: str, answer: str) -> None:
        key = session_key(tenant, session_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.rpush(
                    key,
                    json.dumps({"role": "user", "content": question}),
                    json.dumps({"role": "assistant", "content": answer}),
                )
                pipe.ltrim(key, -2 * self._turns, -1)  # a turn is a question and its answer
                pipe.expire(key, TTL_SECONDS)
                await pipe.execute()
        except RedisError as exc:
            log.warning("memory_unavailable", error=type(exc).__name__)

    async def delete(self, tenant: str, session_id: str) -> bool:
        try:
            return bool(await self._redis.delete(session_key(tenant, session_id)))
        except RedisError as exc:
            log.warning("memory_unavailable", error=type(exc).__name__)
            return False
