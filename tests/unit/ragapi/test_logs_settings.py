"""Secret masking in logs and fail-fast settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from ragapi.logs import configure_logging, mask_text
from ragapi.settings import Environment, Settings


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("key rl_AbCdEfGh_0123456789abcdefghijABCDEFGHIJ used", "0123456789abcdefghij"),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.sig", "eyJhbGciOi"),
        ("dsn postgresql://app:hunter2secret@db:5432/rag", "hunter2secret"),
        ("redis://:p4ssw0rd@127.0.0.1:6379/0", "p4ssw0rd"),
        ("provider key sk-proj-abcdefghijklmnop", "abcdefghijklmnop"),
    ],
)
def test_mask_text(text: str, leak: str) -> None:
    assert leak not in mask_text(text)


@pytest.fixture()
def reset_logging() -> Iterator[None]:
    yield
    # The configuration holds this test's captured stderr: undo it.
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def test_log_lines_are_json_and_masked(
    capsys: pytest.CaptureFixture[str], reset_logging: None
) -> None:
    # Configured here, not in a fixture: pytest swaps stderr between setup and call.
    configure_logging("INFO", json_output=True)
    structlog.contextvars.bind_contextvars(request_id="r-1")
    structlog.get_logger("t").info(
        "connecting",
        database_url="postgresql://u:pw123456@h/db",
        api_key="abc",
        detail={"password": "x", "ok": 1},
    )
    structlog.contextvars.clear_contextvars()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "connecting" and line["request_id"] == "r-1"
    assert line["database_url"] == "***" and line["api_key"] == "***"
    assert line["detail"] == {"password": "***", "ok": 1}


def test_settings_name_each_problem() -> None:
    s = Settings(
        _env_file=None, env=Environment.PRODUCTION, database_url="postgresql://a:changeme@h/d"
    )
    problems = s.problems()
    assert "RAGLINE_REDIS_URL is not set" in problems
    assert "RAGLINE_DATABASE_URL uses a placeholder password" in problems
    ok = Settings(_env_file=None, database_url="postgresql://a:b@h/d", redis_url="redis://h")
    assert ok.problems() == []
