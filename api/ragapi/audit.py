"""The audit log: every mutating call and every denied access, in Postgres, per tenant
(under the same row-level security as the data), readable by the tenant's admins."""

from __future__ import annotations

import getpass
import json
import os
from typing import Any

import asyncpg
import structlog

from ragapi.auth import Principal
from ragapi.store.tenancy import set_tenant, tenant_tx

log = structlog.get_logger(__name__)


async def _insert(
    conn: asyncpg.Connection,
    tenant: str,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    request_id: str,
    detail: dict[str, Any] | None,
) -> None:
    """One entry, in the caller's transaction (scoped to ``tenant``)."""
    await conn.execute(
        """INSERT INTO audit_log (tenant, actor, action, target, outcome, request_id, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)""",
        tenant,
        actor,
        action,
        target,
        outcome,
        request_id,
        json.dumps(detail or {}),
    )


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
            await _insert(
                conn,
                principal.tenant,
                f"key:{principal.key_id}",
                action,
                target,
                outcome,
                request_id,
                detail,
            )
    except (OSError, asyncpg.PostgresError) as exc:
        log.error("audit_write_failed", action=action, target=target, error=type(exc).__name__)


def command_line_actor() -> str:
    """Who ran a ``ragline`` command: the operating-system user (in a pod, often only a
    uid)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry and no USER variable, as in many images
        return f"cli:uid-{os.getuid()}"


async def record_command(
    conn: asyncpg.Connection,
    tenant: str,
    *,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit an administrator's command (``ragline keys create`` / ``revoke``). It runs
    with the owner's connection and no request, so it writes directly; unlike a request's
    entry, a failure here fails the command, which has not reported success yet."""
    async with conn.transaction():
        await set_tenant(conn, tenant)
        await _insert(conn, tenant, command_line_actor(), action, target, "allowed", "", detail)


async def entries(pool: asyncpg.Pool, tenant: str, limit: int) -> list[asyncpg.Record]:
    async with tenant_tx(pool, tenant, readonly=True) as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            """SELECT at, actor, action, target, outcome, request_id, detail
               FROM audit_log ORDER BY id DESC LIMIT $1""",
            limit,
        )
    return rows
