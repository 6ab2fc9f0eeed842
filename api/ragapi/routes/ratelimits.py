"""The caller's own rate-limit window."""

from __future__ import annotations

from fastapi import APIRouter

from ragapi.deps import PrincipalDep, StateDep
from ragapi.routes._errors import errors
from ragapi.schemas import RateLimitStatus

router = APIRouter(tags=["rate limits"])


@router.get(
    "/v1/rate-limit/status",
    response_model=RateLimitStatus,
    summary="Remaining requests and reset time for this key",
    responses=errors(429),
)
async def rate_limit_status(state: StateDep, principal: PrincipalDep) -> RateLimitStatus:
    # This request itself was counted by the auth dependency; peek shows what is left.
    d = await state.callers.peek(str(principal.key_id))
    return RateLimitStatus(
        limit=d.limit,
        remaining=d.remaining,
        reset_seconds=d.reset_seconds,
        window=str(state.callers.item),
    )
