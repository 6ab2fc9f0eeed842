"""FastAPI dependencies: the app state, the authenticated caller, the index they use."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, Path, Request

from ragapi.auth import Principal, Role
from ragapi.contract import NAME_PATTERN
from ragapi.errors import RateLimited, Unauthenticated
from ragapi.state import AppState
from ragapi.store.indexes import IndexRecord

ANONYMOUS_ADMIN = Principal(
    key_id=uuid.UUID(int=0), tenant="default", role=Role.ADMIN, indexes=frozenset()
)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.ragline
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def current_principal(
    request: Request,
    state: StateDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    """The caller, rate limited per key; failed authentication is rate limited per IP, so
    guessing keys costs time."""
    try:
        if state.settings.auth_disabled and not authorization:
            # Local experiments only (production refuses to start with it): one admin.
            principal = ANONYMOUS_ADMIN
        else:
            principal = await state.keys.verify(authorization)
    except Unauthenticated:
        ip = request.client.host if request.client else "unknown"
        decision = await state.callers.hit(ip, scope="ip")
        if not decision.allowed:
            raise RateLimited(
                "too many failed authentications from this address", headers=decision.headers()
            ) from None
        raise
    decision = await state.callers.hit(str(principal.key_id))
    request.scope.setdefault("state", {})["ratelimit"] = decision
    request.scope["state"]["principal"] = principal
    if not decision.allowed:
        raise RateLimited(
            f"rate limit of {state.callers.item} exceeded; retry in {decision.reset_seconds}s",
            headers=decision.headers(),
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
IndexName = Annotated[
    str, Path(min_length=1, max_length=63, pattern=NAME_PATTERN, description="RagIndex name")
]


async def readable_index(state: StateDep, principal: PrincipalDep, index: IndexName) -> IndexRecord:
    principal.require_index(index)
    return await state.index(index)


async def writable_index(state: StateDep, principal: PrincipalDep, index: IndexName) -> IndexRecord:
    principal.require_role(Role.ADMIN)
    principal.require_index(index)
    return await state.index(index)


ReadableIndex = Annotated[IndexRecord, Depends(readable_index)]
WritableIndex = Annotated[IndexRecord, Depends(writable_index)]
