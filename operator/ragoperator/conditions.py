"""Status conditions: constants and small builders, as CloudNativePG keeps them.

Conditions follow ``metav1.Condition``; ``set_condition`` keeps ``lastTransitionTime``
when the status does not change, so re-reconciling writes an identical status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

READY = "Ready"
INDEX_BUILT = "IndexBuilt"
DATABASE_REACHABLE = "DatabaseReachable"
DEPLOYMENT_AVAILABLE = "DeploymentAvailable"
BUDGET_AVAILABLE = "BudgetAvailable"

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str, status: str, reason: str, message: str, generation: int | None
) -> dict[str, Any]:
    cond: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def set_condition(
    existing: list[dict[str, Any]] | None, new: dict[str, Any]
) -> list[dict[str, Any]]:
    """Replace the condition of ``new['type']``; keep its transition time if unchanged."""
    out: list[dict[str, Any]] = []
    replaced = False
    for cond in existing or []:
        if cond.get("type") == new["type"]:
            if cond.get("status") == new["status"] and cond.get("lastTransitionTime"):
                new = {**new, "lastTransitionTime": cond["lastTransitionTime"]}
            out.append(new)
            replaced = True
        else:
            out.append(dict(cond))
    if not replaced:
        out.append(new)
    return sorted(out, key=lambda c: str(c["type"]))


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == TRUE for c in conditions or [])
