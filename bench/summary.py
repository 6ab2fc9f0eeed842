"""The closing table: each part's goal, met or missed, from this run's figures."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from bench.common import table, verdict


def print_goals(console: Console, summary: dict[str, Any]) -> None:
    rows = []
    if "retrieval" in summary:
        g = summary["retrieval"]["goal"]
        extra = [
            f"m {b['m']} efC {b['ef_construction']} at ef {b['met_at_ef']}"
            for b in g.get("rebuilds", [])
            if b["met_at_ef"] is not None
        ]
        rows.append(
            [
                f"retrieval SQL, {g['rows']:,} chunks, m 16 efC 64",
                "recall@10 ≥ 0.98 and txn p99 ≤ 2 ms",
                f"ef {g['ef_search']}: recall {g['recall']:.4f}, p99 {g['p99_ms']:.2f} ms"
                + (
                    f"; met after a rebuild with {'; '.join(extra)}"
                    if extra and not g["met"]
                    else ""
                ),
                verdict(g["met"]),
            ]
        )
    if "search" in summary:
        s = summary["search"]
        rows.append(
            [
                f"/search over HTTP, {s['chunks']:,} chunks, one client",
                "p99 ≤ 20 ms",
                f"p99 {s['goal']['p99_ms']:.2f} ms",
                verdict(s["goal"]["met"]),
            ]
        )
    if "ingest" in summary:
        g = summary["ingest"]["goal"]
        rows.append(
            [
                "ingestion vs raw embedder (same chunks, same batches)",
                "overhead ≤ 10%",
                f"overhead {g['overhead']:+.1%} (raw/pipeline {g['raw_over_pipeline']:.3f})",
                verdict(g["met"]),
            ]
        )
    if "telemetry" in summary:
        g = summary["telemetry"]["goal"]
        rows.append(
            [
                "tracing on /search and /query (metrics + traces vs metrics only)",
                f"p50 cost ≤ {g['max']:.0%}",
                f"worst {g['tracing_cost_p50']:+.1%}",
                verdict(g["met"]),
            ]
        )
    if rows:
        console.print(table("Goals (this run)", ["what", "goal", "measured", ""], rows))
