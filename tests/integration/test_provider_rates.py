"""Provider RPM/TPM against real Redis: a refused call is not charged against any limit."""

from __future__ import annotations

import uuid

import pytest

from ragapi.contract import RateLimits
from ragapi.embedded import EmbeddedStack
from ragapi.ratelimit import ProviderRateLimiter, storage_for

pytestmark = pytest.mark.integration


async def test_tokens_per_minute_and_requests_per_minute(stack: EmbeddedStack) -> None:
    limiter = ProviderRateLimiter(storage_for(stack.redis.url))
    budget = f"b-{uuid.uuid4().hex[:8]}"
    limits = RateLimits(requests_per_minute=3, tokens_per_minute=1000)
    assert await limiter.admit(budget, limits, 600)
    assert not await limiter.admit(budget, limits, 600)  # 1200 > 1000 tokens
    assert await limiter.admit(budget, limits, 300)  # the refusal charged nothing
    assert await limiter.admit(budget, limits, 100)  # 1000 tokens, 3 requests
    assert not await limiter.admit(budget, limits, 0)  # 4th request in the minute
    assert await limiter.admit(f"{budget}-other", limits, 900)  # each budget has its own window
