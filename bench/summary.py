"""The closing table: each part's goal, met or missed, from this run's figures."""

from __future__ import annotations

from typing import Any

from rich.console import Console


def print_goals(console: Console, summary: dict[str, Any]) -> None:
    pass
