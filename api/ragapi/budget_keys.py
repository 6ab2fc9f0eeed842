"""The Redis layout of ProviderBudget counters: a public contract module.

The API pods write these counters (reserve before a call, settle after it); the operator
reads them to fill ``ProviderBudget.status``. Both import this module, so the layout is
written down once. Money is kept in integer micro-dollars to stay exact under INCRBY.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ragapi.contract import Period

MICROS = Decimal(1_000_000)


def period_bounds(period: Period, at: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the budget period containing ``at``, in UTC."""
    at = at.astimezone(UTC)
    if period is Period.HOURLY:
        start = at.replace(minute=0, second=0, microsecond=0)
        return start, start + timedelta(hours=1)
    if period is Period.DAILY:
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def counters_key(namespace: str, budget: str, period: Period, at: datetime) -> str:
    """One hash per budget and period; the braces keep a budget's keys on one cluster slot."""
    start, _ = period_bounds(period, at)
    return f"ragline:budget:{{{namespace}/{budget}}}:{start.strftime('%Y%m%dT%H')}"


# Fields of the counters hash.
SPENT_USD_MICROS = "spent_usd_micros"
SPENT_TOKENS = "spent_tokens"
SPENT_REQUESTS = "spent_requests"
RESERVED_USD_MICROS = "reserved_usd_micros"
RESERVED_TOKENS = "reserved_tokens"
RESERVED_REQUESTS = "reserved_requests"


def reservations_key(counters: str) -> str:
    """Hash of open reservations (id → amounts) for one counters hash."""
    return f"{counters}:res"


def expiries_key(counters: str) -> str:
    """Sorted set of open reservations by expiry (ms, Redis server time)."""
    return f"{counters}:exp"


@dataclass(frozen=True)
class Spend:
    usd: Decimal = Decimal(0)
    tokens: int = 0
    requests: int = 0

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> Spend:
        return cls(
            usd=Decimal(int(fields.get(SPENT_USD_MICROS, 0))) / MICROS,
            tokens=int(fields.get(SPENT_TOKENS, 0)),
            requests=int(fields.get(SPENT_REQUESTS, 0)),
        )
