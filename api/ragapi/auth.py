"""API keys: random, shown once, stored as SHA-256 hashes.

A key looks like ``rl_<prefix>_<secret>``: the prefix finds the row, the hash of the
whole key proves it. SHA-256 (not a slow password hash) is right here because keys
carry 190 bits of randomness: there is nothing to brute-force, and verification stays
off the hot path's latency budget. Verified keys are cached in-process for a few
seconds, so a revocation takes effect within ``CACHE_SECONDS`` on every pod.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import asyncpg

from ragapi.errors import Forbidden, Unauthenticated

KEY_PREFIX = "rl"
CACHE_SECONDS = 10.0
_ALPHABET = string.ascii_letters + string.digits


class Role(StrEnum):
    ADMIN = "admin"  # manage documents and keys
    READER = "reader"  # search and query


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    tenant: str
    role: Role
    indexes: frozenset[str] = field(default_factory=frozenset)  # empty = every index

    def require_index(self, index: str) -> None:
        if self.indexes and index not in self.indexes:
            raise Forbidden(f"this key may not use index {index!r}")

    def require_role(self, role: Role) -> None:
        if role is Role.ADMIN and self.role is not Role.ADMIN:
            raise Forbidden("this action needs the admin role")


@dataclass(frozen=True)
class NewKey:
    id: uuid.UUID
    key: str  # shown once


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def generate_key() -> tuple[str, str]:
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(32))
    return prefix, f"{KEY_PREFIX}_{prefix}_{secret}"


async def create_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    tenant: str,
    role: Role,
    indexes: list[str] | None = None,
    name: str = "",
) -> NewKey:
    prefix, key = generate_key()
    key_id = uuid.uuid4()
    await conn.execute(
        """INSERT INTO api_keys (id, prefix, key_hash, name, tenant, role, indexes)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        key_id,
        prefix,
        _hash(key),
        name,
        tenant,
        role.value,
        sorted(indexes or []),
    )
    return NewKey(key_id, key)


async def revoke_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: uuid.UUID) -> str | None:
    """Revoke an active key; its tenant, or None when no active key has that id."""
    tenant: str | None = await conn.fetchval(
        """UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
           RETURNING tenant""",
        key_id,
    )
    return tenant


async def list_keys(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT id, prefix, name, tenant, role, indexes, created_at, revoked_at
           FROM api_keys ORDER BY created_at"""
    )
    return rows


class KeyVerifier:
    """Bearer credentials: Ragline API keys, and JWTs when an identity provider is set."""

    def __init__(
        self, pool: asyncpg.Pool, cache_seconds: float = CACHE_SECONDS, jwt: Any | None = None
    ) -> None:
        self._pool = pool
        self._cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[float, Principal]] = {}
        self.jwt = jwt  # a ragapi.jwtauth.JwtVerifier, or None

    async def verify(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing Authorization header (expected: Bearer <token>)")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("Authorization must be: Bearer <api key or token>")
        if self.jwt is not None and token.count(".") == 2 and not token.startswith("rl_"):
            principal: Principal = await self.jwt.verify(token)
            return principal
        parts = token.split("_")
        if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8:
            raise Unauthenticated("invalid API key")
        digest = _hash(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return cached[1]
        row = await self._pool.fetchrow(
            """SELECT id, key_hash, tenant, role, indexes FROM api_keys
               WHERE prefix = $1 AND revoked_at IS NULL""",
            parts[1],
        )
        if row is None or not hmac.compare_digest(bytes(row["key_hash"]), digest):
            raise Unauthenticated("invalid API key")
        principal = Principal(
            key_id=row["id"],
            tenant=row["tenant"],
            role=Role(row["role"]),
            indexes=frozenset(row["indexes"]),
        )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._cache_seconds, principal)
        return principal
