"""JWT bearer tokens from an external identity provider (Keycloak, Dex, Auth0, ...).

Ragline is a resource server: it verifies RS256/ES256 signatures against the provider's
JWKS (fetched over HTTP, cached, refetched when a token names an unknown ``kid`` — key
rotation — at most once per ``refresh_floor_seconds``), checks issuer, audience and
expiry, and takes the tenant and role from configurable claims. It never issues tokens.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog

from ragapi.auth import Principal, Role
from ragapi.errors import Forbidden, Unauthenticated

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class JwtConfig:
    jwks_url: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    tenant_claim: str = "tenant"
    role_claim: str = "role"
    indexes_claim: str = "indexes"
    cache_seconds: float = 300.0
    # An unknown kid refetches the JWKS, but not more often than this (no fetch storms
    # from a flood of forged tokens).
    refresh_floor_seconds: float = 30.0
    leeway_seconds: float = 30.0


def _claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.ragline_role``), as nested IdP claims are."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class JwtVerifier:
    def __init__(self, config: JwtConfig, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self._client = client or httpx.AsyncClient(timeout=5)
        self._keys: jwt.PyJWKSet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _jwks(self, *, refresh: bool) -> jwt.PyJWKSet:
        async with self._lock:
            now = time.monotonic()
            stale = now - self._fetched_at > self.config.cache_seconds
            may_refresh = now - self._fetched_at > self.config.refresh_floor_seconds
            if self._keys is None or stale or (refresh and may_refresh):
                try:
                    resp = await self._client.get(self.config.jwks_url)
                    resp.raise_for_status()
                    self._keys = jwt.PyJWKSet.from_dict(resp.json())
                    self._fetched_at = now
                except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                    log.error("jwks_fetch_failed", error=type(exc).__name__)
                    if self._keys is None:
                        raise Unauthenticated("token keys are unavailable; try again") from exc
            assert self._keys is not None
            return self._keys

    async def _key(self, kid: str | None) -> Any:
        for refresh in (False, True):
            keys = await self._jwks(refresh=refresh)
            for k in keys.keys:
                if kid is None or k.key_id == kid:
                    return k.key
        raise Unauthenticated("token signed with an unknown key")

    async def verify(self, token: str) -> Principal:
        cfg = self.config
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("malformed token") from exc
        if header.get("alg") not in cfg.algorithms:
            raise Unauthenticated(f"token algorithm must be one of {', '.join(cfg.algorithms)}")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(cfg.algorithms),
                audience=cfg.audience,
                issuer=cfg.issuer,
                leeway=cfg.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        tenant = _claim(claims, cfg.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise Unauthenticated(f"token has no {cfg.tenant_claim!r} claim")
        role_value = _claim(claims, cfg.role_claim) or Role.READER.value
        try:
            role = Role(role_value)
        except ValueError as exc:
            raise Forbidden(f"token role {role_value!r} is not admin or reader") from exc
        indexes = _claim(claims, cfg.indexes_claim) or []
        # A stable identity per subject: rate limits and the audit log key on it.
        subject = uuid.uuid5(uuid.NAMESPACE_URL, f"{claims['iss']}#{claims['sub']}")
        return Principal(
            key_id=subject, tenant=tenant, role=role, indexes=frozenset(str(i) for i in indexes)
        )

    async def aclose(self) -> None:
        await self._client.aclose()
