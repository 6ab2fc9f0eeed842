"""A real ``ragline serve`` process on 127.0.0.1, as ``tests/conftest.py`` starts one.

The same steps as the test fixture, without importing pytest: the bench is a tool of
its own. The process dies with the bench (``PR_SET_PDEATHSIG``) if the bench is killed.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ragapi.embedded import EmbeddedStack, free_port

RAGLINE = str(Path(sys.executable).parent / "ragline")
READY_TIMEOUT = 120.0


def _die_with_parent() -> Callable[[], None]:
    def _set() -> None:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return _set


@dataclass
class ApiProcess:
    url: str
    log: Path
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of ``/metrics``, keyed by name and sorted labels."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
        return out

    def access_log(self, route_suffix: str) -> list[dict[str, Any]]:
        """The API's own access lines (JSON) for routes ending in ``route_suffix``."""
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if event.get("event") == "http_request" and str(event.get("route", "")).endswith(
                route_suffix
            ):
                lines.append(event)
        return lines


def start_api(stack: EmbeddedStack, routing: Path, log: Path) -> ApiProcess:
    port = free_port()
    # No OTEL_* from the caller's shell: an exporter would add its own cost to every request.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(stack.environ())
    env["RAGLINE_ROUTING_FILE"] = str(routing)
    # One client sends hundreds of requests a second: raise the per-key limit so the bench
    # is never refused. The limiter still runs (its Redis round trip stays in every request).
    env["RAGLINE_RATE_LIMIT"] = "1000000/minute"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [RAGLINE, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(),
        )
    api = ApiProcess(f"http://127.0.0.1:{port}", log, proc)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{api.url}/readyz", timeout=2).status_code == 200:
                return api
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            api.stop()
            raise RuntimeError(f"API not ready after {READY_TIMEOUT} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
