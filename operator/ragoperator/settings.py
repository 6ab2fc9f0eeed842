"""Operator settings from ``RAGLINE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGLINE_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None, description="DSN for RagIndexes without spec.database.secretRef."
    )
    database_secret_name: str | None = Field(
        default=None, description="Secret holding that DSN, mounted into index-build Jobs."
    )
    database_secret_key: str = "databaseUrl"  # noqa: S105 - a key name, not a secret
    redis_url: SecretStr | None = Field(default=None, description="Where budget counters live.")
    image: str = Field(default="ragline:0.1.0", description="Image for index-build Jobs.")
    build_service_account: str | None = None
    metrics_port: int = 9090
    metrics_address: str = "0.0.0.0"  # noqa: S104 - in a pod; tests pass 127.0.0.1
    job_poll_seconds: float = 5.0
    status_refresh_seconds: float = 15.0


@lru_cache(maxsize=1)
def get_settings() -> OperatorSettings:
    return OperatorSettings()
