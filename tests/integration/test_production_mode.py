"""Production mode refuses to start with default or missing secrets, wildcard CORS or auth
disabled, naming every problem."""

from __future__ import annotations

import os
import subprocess

from ragapi.embedded import EmbeddedStack
from tests.conftest import RAGLINE


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAGLINE_")}
    return subprocess.run(
        [RAGLINE, "serve", "--port", "1"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_and_names_each_problem() -> None:
    out = _serve(
        {
            "RAGLINE_ENV": "production",
            "RAGLINE_DATABASE_URL": "postgresql://app:changeme@db/rag",
            "RAGLINE_CORS_ORIGINS": '["*"]',
            "RAGLINE_AUTH_DISABLED": "true",
            "RAGLINE_JWT_JWKS_URL": "http://idp/certs",
        }
    )
    assert out.returncode == 2
    for problem in (
        "RAGLINE_REDIS_URL is not set",
        "RAGLINE_DATABASE_URL uses a placeholder password",
        "RAGLINE_AUTH_DISABLED is set",
        "RAGLINE_CORS_ORIGINS must not be '*'",
        "RAGLINE_JWT_ISSUER and RAGLINE_JWT_AUDIENCE are required with JWT",
        "RAGLINE_JWT_JWKS_URL must use https",
    ):
        assert problem in out.stderr, out.stderr
    assert "changeme" not in out.stderr  # the offending value is not echoed


def test_local_mode_only_needs_the_connections() -> None:
    out = _serve({"RAGLINE_ENV": "local"})
    assert out.returncode == 2
    assert "RAGLINE_DATABASE_URL is not set" in out.stderr and "placeholder" not in out.stderr


def test_production_refuses_an_app_role_that_bypasses_row_level_security(
    stack: EmbeddedStack,
) -> None:
    out = _serve(
        {
            "RAGLINE_ENV": "production",
            "RAGLINE_DATABASE_URL": stack.postgres.url,  # the owner: BYPASSRLS
            "RAGLINE_REDIS_URL": stack.redis.url,
        }
    )
    assert out.returncode != 0
    assert "bypasses row-level security" in out.stderr
