"""ProviderBudget status from the spend counters: a pure decision."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ragapi.budget_keys import Spend
from ragapi.contract import ProviderBudgetSpec


@dataclass(frozen=True)
class BudgetStatus:
    state: str  # Ok | Warning | Exhausted
    percent: float  # the highest share of any limit used, in percent
    crossed: int | None  # the highest alert threshold reached
    status: dict[str, Any]


def _fraction(spent: Decimal | int, limit: Decimal | int | None) -> float | None:
    if limit is None:
        return None
    if limit == 0:
        return 1.0
    return float(Decimal(spent) / Decimal(limit))


def budget_status(spec: ProviderBudgetSpec, spend: Spend, period_end: str) -> BudgetStatus:
    lim = spec.limit
    fractions = [
        f
        for f in (
            _fraction(spend.usd, lim.usd),
            _fraction(spend.tokens, lim.tokens),
            _fraction(spend.requests, lim.requests),
        )
        if f is not None
    ]
    percent = round(max(fractions, default=0.0) * 100, 2)
    crossed = max((t for t in spec.alert_thresholds if percent >= t), default=None)
    state = "Exhausted" if percent >= 100 else "Warning" if crossed is not None else "Ok"
    remaining: dict[str, Any] = {}
    if lim.usd is not None:
        remaining["usd"] = str(max(lim.usd - spend.usd, Decimal(0)).quantize(Decimal("0.000001")))
    if lim.tokens is not None:
        remaining["tokens"] = max(lim.tokens - spend.tokens, 0)
    if lim.requests is not None:
        remaining["requests"] = max(lim.requests - spend.requests, 0)
    status = {
        "spent": {
            "usd": str(spend.usd.quantize(Decimal("0.000001"))),
            "tokens": spend.tokens,
            "requests": spend.requests,
        },
        "remaining": remaining,
        "state": state,
        "periodEnd": period_end,
    }
    return BudgetStatus(state, percent, crossed, status)
