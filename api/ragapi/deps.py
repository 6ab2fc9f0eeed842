"""FastAPI dependencies: the app state, the authenticated caller, the index they use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from ragapi.auth import Principal, Role
from ragapi.contract import NAME_PATTERN
from ragapi.state import AppState
from ragapi.store.indexes import IndexRecord


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.ragline
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def current_principal(
    state: StateDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal:
    return await state.keys.verify(authorization)


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
