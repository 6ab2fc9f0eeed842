"""Rate limits in Redis, shared by every replica, with the `limits` library.

- Callers: per API key (per client IP before authentication), a moving window; 429 with
  ``Retry-After`` and ``RateLimit-Limit/Remaining/Reset``. When Redis is down the
  behaviour is a setting: fail open (default; logged and counted) or closed.
- Providers: a ProviderBudget's ``requestsPerMinute`` / ``tokensPerMinute``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.limits import RateLimitItemPerMinute

from ragapi.contract import RateLimits
from ragapi.metrics import RATELIMIT_REJECTIONS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window frees capacity

    def headers(self) -> dict[str, str]:
        h = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            h["Retry-After"] = str(max(1, self.reset_seconds))
        return h


def storage_for(redis_url: str) -> RedisStorage:
    # limits wants its own scheme; redis-py's asyncio client underneath.
    uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
    return RedisStorage(
        uri,
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix="ragline:rl",
        socket_timeout=2,
        socket_connect_timeout=2,
    )


class CallerLimiter:
    def __init__(self, storage: RedisStorage, rate: str, *, fail_open: bool) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self.item: RateLimitItem = parse(rate)
        self.fail_open = fail_open

    async def hit(self, identity: str, *, scope: str = "key") -> Decision:
        try:
            allowed = await self._limiter.hit(self.item, scope, identity)
            stats = await self._limiter.get_window_stats(self.item, scope, identity)
        except Exception as exc:  # limits wraps every storage failure
            RATELIMIT_REJECTIONS.labels("store_unavailable").inc()
            log.warning(
                "ratelimit_store_unavailable", fail_open=self.fail_open, error=type(exc).__name__
            )
            amount = self.item.amount
            return Decision(self.fail_open, amount, amount if self.fail_open else 0, 1)
        if not allowed:
            RATELIMIT_REJECTIONS.labels(scope).inc()
        return Decision(
            allowed,
            self.item.amount,
            max(0, stats.remaining),
            max(0, int(stats.reset_time - time.time() + 0.999)),
        )

    async def peek(self, identity: str, *, scope: str = "key") -> Decision:
        try:
            stats = await self._limiter.get_window_stats(self.item, scope, identity)
        except Exception:
            return Decision(self.fail_open, self.item.amount, 0, 1)
        return Decision(
            stats.remaining > 0,
            self.item.amount,
            max(0, stats.remaining),
            max(0, int(stats.reset_time - time.time() + 0.999)),
        )


class ProviderRateLimiter:
    """RPM/TPM of one budget. Raises on a store failure: the caller fails closed."""

    def __init__(self, storage: RedisStorage) -> None:
        self._limiter = MovingWindowRateLimiter(storage)

    async def admit(self, budget: str, limits_: RateLimits, tokens: int) -> bool:
        checks: list[tuple[RateLimitItem, str, int]] = []
        if limits_.requests_per_minute:
            checks.append((RateLimitItemPerMinute(limits_.requests_per_minute), "rpm", 1))
        if limits_.tokens_per_minute:
            checks.append((RateLimitItemPerMinute(limits_.tokens_per_minute), "tpm", tokens))
        # test() first, so a call refused by one limit is not charged against another
        for item, kind, cost in checks:
            if not await self._limiter.test(item, "provider", budget, kind, cost=cost):
                RATELIMIT_REJECTIONS.labels(f"provider_{kind}").inc()
                return False
        for item, kind, cost in checks:
            await self._limiter.hit(item, "provider", budget, kind, cost=cost)
        return True
