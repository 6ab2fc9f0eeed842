"""The audit log: every mutating call and every denied access, in Postgres, per tenant
(under the same row-level security as the data), readable by the tenant's admins."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import structlog

from ragapi.auth import Principal
from ragapi.store.tenancy import tenant_tx

log = structlog.get_logger(__name__)


async def record(
    pool: asyncpg.Pool,
    principal: Principal,
    *,
    action: str,
    target: str,
    outcome: str,
    request_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one entry. An audit failure is logged loudly but never fails the request."""
    try:
        async with tenant_tx(pool, principal.tenant) as conn:
            await conn.execute(
                """INSERT INTO audit_log (tenant, actor, action, target, outcome, request_id,
                                          detail)
                   VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)""",
                principal.tenant,
                f"key:{principal.key_id}",
                action,
                target,
                outcome,
                request_id,
                json.dumps(detail or {}),
            )
    except (OSError, asyncpg.PostgresError) as exc:
        log.error("audit_write_failed", action=action, target=target, error=type(exc).__name__)


async def entries(pool: asyncpg.Pool, tenant: str, limit: int) -> list[asyncpg.Record]:
    async with tenant_tx(pool, tenant, readonly=True) as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            """SELECT at, actor, action, target, outcome, request_id, detail
               FROM audit_log ORDER BY id DESC LIMIT $1""",
            limit,
        )
    return rows
