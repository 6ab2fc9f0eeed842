"""Shared fixtures: the embedded stack, provider test servers, a real API process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ragapi.embedded import EmbeddedStack, free_port
from tests.support.provider_server import ProviderServer

REPO = Path(__file__).resolve().parent.parent
RAGLINE = str(Path(sys.executable).parent / "ragline")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    # Started from pytest's main thread: the servers die with this process (PDEATHSIG).
    s = EmbeddedStack(tmp_path_factory.mktemp("stack"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """Postgres and Redis for one test module alone: the ingestion job queue is table-wide,
    and the session's other API processes would claim (and trace, settle) its jobs."""
    s = EmbeddedStack(tmp_path_factory.mktemp("private-stack"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def provider() -> Iterator[ProviderServer]:
    server = ProviderServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class ApiProcess:
    url: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes]

    def ragline(self, *args: str) -> str:
        out = subprocess.run(
            [RAGLINE, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def create_key(self, role: str = "admin", tenant: str = "default", *indexes: str) -> str:
        args = ["keys", "create", "--role", role, "--tenant", tenant]
        for i in indexes:
            args += ["--index", i]
        return self.ragline(*args).strip().splitlines()[-1]


def start_api(
    routing: Path, env_extra: dict[str, str], stack: EmbeddedStack, log: Path
) -> ApiProcess:
    port = free_port()
    env = {
        **os.environ,
        **stack.environ(),
        "RAGLINE_ROUTING_FILE": str(routing),
        "RAGLINE_EMBEDDER_THREADS": "1",
        **env_extra,
    }
    out = log.open("wb")
    proc = subprocess.Popen(
        [RAGLINE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"API not ready after 90 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return ApiProcess(url, env, log, proc)


def stop_api(api: ApiProcess) -> None:
    api.proc.terminate()
    try:
        api.proc.wait(20)
    except subprocess.TimeoutExpired:
        api.proc.kill()
        api.proc.wait(5)
