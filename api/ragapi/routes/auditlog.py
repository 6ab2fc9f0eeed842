"""The tenant's audit log, for its admins."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from ragapi import audit
from ragapi.auth import Role
from ragapi.deps import PrincipalDep, StateDep
from ragapi.routes._errors import errors
from ragapi.schemas import AuditEntry, AuditLog

router = APIRouter(tags=["audit"])


@router.get(
    "/v1/audit",
    response_model=AuditLog,
    summary="Recent audit entries of this tenant",
    responses=errors(403),
)
async def get_audit(
    state: StateDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditLog:
    principal.require_role(Role.ADMIN)
    rows = await audit.entries(state.pool, principal.tenant, limit)
    return AuditLog(
        entries=[AuditEntry(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]
    )
