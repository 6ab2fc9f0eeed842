"""``python -m bench [--quick] [retrieval|search|ingest ...]``: run the benchmarks.

One embedded stack (Postgres 16 + pgvector, redis-server) serves every part; it is
started from the main thread, as :mod:`ragapi.embedded` requires, and stopped (and its
data directory removed) however the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from bench.common import RESULTS_DIR, Bench
from ragapi.embedded import EmbeddedStack

STACK_PARTS = ("retrieval", "search", "ingest")
# Parts that start what they need themselves (API processes, a control plane, Jaeger).
OWN_PARTS = {
    "router": "bench.router_overhead",
    "budget": "bench.budget_proof",
    "cache": "bench.cache_hit",
    "telemetry": "bench.telemetry",
    "operator": "bench.operator_reconcile",
}
PARTS = (*STACK_PARTS, *OWN_PARTS)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    # uvicorn serves the API on uvloop when it is installed; measure the client side alike.
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "parts", nargs="*", metavar="PART", help=f"any of {', '.join(PARTS)} (default: all)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="10k rows only, fewer queries and documents"
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    parser.add_argument("--keep", action="store_true", help="keep the stack's data directory")
    args = parser.parse_args(argv)
    parts = args.parts or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ragapi.logs import configure_logging

    # The store logs one line per ingested document; keep the tables readable.
    configure_logging("WARNING", json_output=True)

    console = Console(width=max(140, shutil.get_terminal_size((140, 40)).columns))
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-"))
    stack = EmbeddedStack(work / "stack")
    started = time.perf_counter()
    mode = "(quick) " if args.quick else ""
    console.print(f"[bold]Ragline benchmarks[/bold] {mode}parts: {', '.join(parts)}")
    _warn_if_busy(console)
    stack.start()  # main thread: the servers die with this process (PR_SET_PDEATHSIG)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            bench = Bench(
                stack=stack,
                runner=runner,
                console=console,
                quick=args.quick,
                work_dir=work,
                results_dir=args.results,
            )
            bench.run(_migrate(bench.dsn))
            summary: dict[str, Any] = {}
            for part in [p for p in parts if p in STACK_PARTS]:
                part_started = time.perf_counter()
                console.rule(f"[bold]{part}")
                summary[part] = _module(part).run(bench)
                load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
                took = time.perf_counter() - part_started
                console.print(f"[dim]{part} took {took:.0f} s; load average {load}[/dim]")
    finally:
        stack.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for part in [p for p in parts if p in OWN_PARTS]:
        import importlib
        import json

        part_started = time.perf_counter()
        console.rule(f"[bold]{part}")
        module = importlib.import_module(OWN_PARTS[part])
        result = module.run(quick=args.quick)
        if hasattr(module, "report"):
            module.report(console, result)
            summary[part] = result
        else:
            console.print_json(json.dumps(result, default=str))
        args.results.mkdir(parents=True, exist_ok=True)
        suffix = "-quick" if args.quick else ""
        (args.results / f"{part}{suffix}.json").write_text(
            json.dumps(result, indent=2, default=str)
        )
        console.print(f"[dim]{part} took {time.perf_counter() - part_started:.0f} s[/dim]")
    from bench.summary import print_goals

    print_goals(console, summary)
    console.print(f"[dim]total {time.perf_counter() - started:.0f} s[/dim]")
    return 0


def _warn_if_busy(console: Console) -> None:
    # This machine has few cores: another process's work lands in our latency percentiles.
    load1 = os.getloadavg()[0]
    if load1 > 0.5 * len(os.sched_getaffinity(0)):
        console.print(
            f"[yellow]load average {load1:.2f} before starting: other processes are using the "
            "CPU, so latency figures will include their interference[/yellow]"
        )


def _module(part: str) -> Any:
    if part == "retrieval":
        from bench import retrieval

        return retrieval
    if part == "search":
        from bench import search

        return search
    from bench import ingest

    return ingest


async def _migrate(dsn: str) -> None:
    import asyncpg

    from ragapi.store.migrations import migrate

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
