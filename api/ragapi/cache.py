"""The answer cache in Redis.

The key holds the tenant, the index, the index's content version, the normalised
question and every parameter that changes the answer (top_k, filters, the chat pool's
spec). Any document upload, update or delete bumps the content version in Postgres, so
old answers become unreachable at once — no scan, no delete; they age out by TTL.
Versions come from one sequence (migration 0006), so an index dropped and created again
under the same name never meets its predecessor's keys. When
Redis is down the cache is skipped, never an error.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Any

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ragapi.metrics import CACHE_REQUESTS

log = structlog.get_logger(__name__)
TTL_SECONDS = 24 * 3600
_SPACE = re.compile(r"\s+")


def normalise_question(question: str) -> str:
    """Case, Unicode form, whitespace and trailing punctuation do not change the answer."""
    text = unicodedata.normalize("NFKC", question).casefold()
    return _SPACE.sub(" ", text).strip().rstrip("?!. ")


def answer_key(
    tenant: str, index: str, content_version: int, question: str, params: dict[str, Any]
) -> str:
    digest = hashlib.sha256(
        json.dumps({"q": normalise_question(question), "p": params}, sort_keys=True).encode()
    ).hexdigest()
    # Braces: one tenant's keys share a cluster slot; the version makes old entries dead.
    return f"ragline:answer:{{{tenant}}}:{index}:v{content_version}:{digest}"


class AnswerCache:
    def __init__(self, redis: aioredis.Redis, ttl_seconds: int = TTL_SECONDS) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    @property
    def enabled(self) -> bool:
        return self._ttl > 0

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self._redis.get(key)
        except RedisError as exc:
            CACHE_REQUESTS.labels("error").inc()
            log.warning("cache_unavailable", error=type(exc).__name__)
            return None
        CACHE_REQUESTS.labels("hit" if raw is not None else "miss").inc()
        if raw is None:
            return None
        value: dict[str, Any] = json.loads(raw)
        return value

    async def put(self, key: str, value: dict[str, Any]) -> None:
        try:
            await self._redis.set(key, json.dumps(value), ex=self._ttl)
        except RedisError as exc:
            log.warning("cache_unavailable", error=type(exc).__name__)
