"""Conversation memory: read or forget a session (the caller's tenant only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from ragapi import audit
from ragapi.deps import PrincipalDep, StateDep
from ragapi.errors import NotFound
from ragapi.http import request_id_of
from ragapi.routes._errors import errors
from ragapi.schemas import SessionPublic, SessionTurn

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
SessionId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")]


@router.get(
    "/{session_id}",
    response_model=SessionPublic,
    summary="A session's recent turns",
    responses=errors(404),
)
async def get_session(
    session_id: SessionId, state: StateDep, principal: PrincipalDep
) -> SessionPublic:
    turns = await state.memory.history(principal.tenant, session_id)
    if not turns:
        raise NotFound(f"session {session_id!r} does not exist")
    return SessionPublic(
        session_id=session_id, turns=[SessionTurn(role=t.role, content=t.content) for t in turns]
    )


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Forget a session",
    responses=errors(404),
)
async def delete_session(
    session_id: SessionId, request: Request, state: StateDep, principal: PrincipalDep
) -> Response:
    if not await state.memory.delete(principal.tenant, session_id):
        raise NotFound(f"session {session_id!r} does not exist")
    await audit.record(
        state.pool,
        principal,
        action="session.delete",
        target=session_id,
        outcome="allowed",
        request_id=request_id_of(request.scope),
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
