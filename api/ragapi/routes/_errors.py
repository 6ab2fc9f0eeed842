"""Error responses declared per route, so the OpenAPI document lists them."""

from __future__ import annotations

from typing import Any

from ragapi.schemas import ErrorResponse


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse} for code in (401, 422, *codes)}
