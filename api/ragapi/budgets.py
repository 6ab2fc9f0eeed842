"""ProviderBudget enforcement: reserve before a call, settle after it, in Redis, atomically.

Each step is one Lua script, so N API replicas under any concurrency never admit a call
that would cross a limit counting every other in-flight reservation: total spend can
exceed the limit only by the error of the in-flight estimates (an estimate below the
provider's reported usage). A reservation carries an expiry in Redis server time; every
reserve first sweeps expired ones, so a pod that died mid-call gives its reservations
back by itself. Money is integer micro-dollars (exact under HINCRBY).

Redis down means budgets fail closed: ``BudgetUnavailable``, and the router treats the
provider as unaffordable (the answer degrades to the extractive provider, flagged).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from ragapi import budget_keys as bk
from ragapi.contract import ProviderBudgetSpec

log = structlog.get_logger(__name__)


_SWEEP = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms)
for _, rid in ipairs(expired) do
  local v = redis.call('HGET', KEYS[2], rid)
  if v then
    local u, t, r = string.match(v, '(%d+)|(%d+)|(%d+)')
    redis.call('HINCRBY', KEYS[1], 'reserved_usd_micros', -tonumber(u))
    redis.call('HINCRBY', KEYS[1], 'reserved_tokens', -tonumber(t))
    redis.call('HINCRBY', KEYS[1], 'reserved_requests', -tonumber(r))
    redis.call('HDEL', KEYS[2], rid)
  end
  redis.call('ZREM', KEYS[3], rid)
end
"""

# KEYS: counters, reservations, expiries. ARGV: id, usd, tokens, requests, ttl_ms,
# limit_usd, limit_tokens, limit_requests (-1 = none), key_ttl_seconds.
RESERVE = (
    _SWEEP
    + """
local function used(f)
  return tonumber(redis.call('HGET', KEYS[1], 'spent_' .. f) or '0')
       + tonumber(redis.call('HGET', KEYS[1], 'reserved_' .. f) or '0')
end
local wanted = {{'usd_micros', tonumber(ARGV[2]), tonumber(ARGV[6])},
                {'tokens', tonumber(ARGV[3]), tonumber(ARGV[7])},
                {'requests', tonumber(ARGV[4]), tonumber(ARGV[8])}}
for _, w in ipairs(wanted) do
  if w[3] >= 0 and used(w[1]) + w[2] > w[3] then
    return {0, w[1], used(w[1]), w[3]}
  end
end
for _, w in ipairs(wanted) do
  redis.call('HINCRBY', KEYS[1], 'reserved_' .. w[1], w[2])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. ARGV[4])
redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[5]), ARGV[1])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[9])) end
return {1}
"""
)

# KEYS: counters, reservations, expiries. ARGV: id, usd, tokens, requests, key_ttl_seconds.
# Settle with zero amounts = release. Spending still counts if the reservation expired.
SETTLE = """
local v = redis.call('HGET', KEYS[2], ARGV[1])
if v then
  local u, t, r = string.match(v, '(%d+)|(%d+)|(%d+)')
  redis.call('HINCRBY', KEYS[1], 'reserved_usd_micros', -tonumber(u))
  redis.call('HINCRBY', KEYS[1], 'reserved_tokens', -tonumber(t))
  redis.call('HINCRBY', KEYS[1], 'reserved_requests', -tonumber(r))
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
redis.call('HINCRBY', KEYS[1], 'spent_usd_micros', tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[1], 'spent_tokens', tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[1], 'spent_requests', tonumber(ARGV[4]))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return v and 1 or 0
"""


class BudgetUnavailable(Exception):
    """Redis cannot be reached: budgets fail closed."""


@dataclass(frozen=True)
class Estimate:
    input_tokens: int
    output_tokens: int
    usd_micros: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def price_micros(
    spec: ProviderBudgetSpec, model: str, input_tokens: int, output_tokens: int
) -> int:
    """Cost in micro-dollars: tokens × (USD per 1M tokens). Rounded up: never under-count."""
    price = next((p for p in spec.pricing if p.model == model), None)
    if price is None:
        return 0
    usd_micros = (
        Decimal(input_tokens) * price.input_per1_m + Decimal(output_tokens) * price.output_per1_m
    )
    return math.ceil(usd_micros)


def estimate(spec: ProviderBudgetSpec, model: str, prompt_chars: int, max_output: int) -> Estimate:
    """A deliberately high estimate: ~3 characters per token for the prompt (English runs
    nearer 4) and the full output allowance."""
    input_tokens = math.ceil(prompt_chars / 3)
    return Estimate(input_tokens, max_output, price_micros(spec, model, input_tokens, max_output))


@dataclass(frozen=True)
class Refusal:
    budget: str
    dimension: str  # usd_micros | tokens | requests
    used: int
    limit: int
    retry_after: int  # seconds to the end of the period


@dataclass(frozen=True)
class Reservation:
    budget: str
    spec: ProviderBudgetSpec
    id: str
    counters: str
    estimate: Estimate


def _limit(value: Decimal | int | None, scale: Decimal = Decimal(1)) -> int:
    return -1 if value is None else int(Decimal(value) * scale)


class BudgetLedger:
    def __init__(self, redis: aioredis.Redis, namespace: str, grace_seconds: float = 30.0) -> None:
        self._redis = redis
        self._namespace = namespace
        # A reservation outlives its call's own timeout by this margin before it expires.
        self._grace = grace_seconds
        self._reserve = redis.register_script(RESERVE)
        self._settle = redis.register_script(SETTLE)

    def _keys(self, counters: str) -> list[str]:
        return [counters, bk.reservations_key(counters), bk.expiries_key(counters)]

    async def reserve(
        self, name: str, spec: ProviderBudgetSpec, est: Estimate, timeout_seconds: float
    ) -> Reservation | Refusal:
        now = datetime.now(UTC)
        start, end = bk.period_bounds(spec.period, now)
        counters = bk.counters_key(self._namespace, name, spec.period, now)
        rid = uuid.uuid4().hex
        key_ttl = int((end - start).total_seconds()) + 7 * 86400  # status stays readable a while
        lim = spec.limit
        try:
            result = await self._reserve(
                keys=self._keys(counters),
                args=[
                    rid,
                    est.usd_micros,
                    est.tokens,
                    1,
                    int((timeout_seconds + self._grace) * 1000),
                    _limit(lim.usd, bk.MICROS),
                    _limit(lim.tokens),
                    _limit(lim.requests),
                    key_ttl,
                ],
            )
        except RedisError as exc:
            raise BudgetUnavailable(f"budget store unreachable: {type(exc).__name__}") from exc
        if int(result[0]) == 1:
            return Reservation(name, spec, rid, counters, est)
        dimension = result[1].decode() if isinstance(result[1], bytes) else str(result[1])
        return Refusal(
            name,
            dimension,
            int(result[2]),
            int(result[3]),
            retry_after=max(1, int((end - now).total_seconds())),
        )

    async def settle(
        self, r: Reservation, model: str, input_tokens: int, output_tokens: int
    ) -> int:
        """Record the provider's reported usage; returns the cost in micro-dollars."""
        cost = price_micros(r.spec, model, input_tokens, output_tokens)
        await self._run_settle(r, cost, input_tokens + output_tokens, 1)
        return cost

    async def release(self, r: Reservation) -> None:
        """The call failed or never happened: give the reservation back."""
        await self._run_settle(r, 0, 0, 0)

    async def _run_settle(self, r: Reservation, usd: int, tokens: int, requests: int) -> None:
        try:
            await self._settle(
                keys=self._keys(r.counters), args=[r.id, usd, tokens, requests, 40 * 86400]
            )
        except RedisError as exc:
            # The reservation expires by itself; the spend is lost to the counters, so say so.
            log.error(
                "budget_settle_failed",
                budget=r.budget,
                error=type(exc).__name__,
                usd_micros=usd,
                tokens=tokens,
            )
