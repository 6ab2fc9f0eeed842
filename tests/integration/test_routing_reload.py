"""A running API picks up a changed routing file without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from ragapi.embedded import EmbeddedStack
from tests.conftest import start_api, stop_api

pytestmark = pytest.mark.integration

FIRST = "apiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: reload-a}\n"
SECOND = (
    FIRST + "---\napiVersion: ragline.dev/v1alpha1\nkind: RagIndex\nmetadata: {name: reload-b}\n"
)


def test_new_index_appears_and_broken_file_keeps_last_good(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    routing = tmp_path / "routing.yaml"
    routing.write_text(FIRST)
    api = start_api(routing, {}, stack, tmp_path / "api.log")
    try:
        h = {"Authorization": f"Bearer {api.create_key('admin')}"}

        def search(index: str) -> int:
            return httpx.post(
                f"{api.url}/v1/indexes/{index}/search", headers=h, json={"query": "x"}
            ).status_code

        assert search("reload-a") == 200
        # ConfigMap volumes update by swapping a symlink; a rename does the same here.
        tmp = tmp_path / "routing.new"
        tmp.write_text(SECOND)
        tmp.replace(routing)
        deadline = time.monotonic() + 20
        while search("reload-b") != 200:
            assert time.monotonic() < deadline, "routing change not picked up"
            time.sleep(0.3)
        routing.write_text("kind: [broken")
        time.sleep(3)
        assert search("reload-b") == 200
        ready = httpx.get(f"{api.url}/readyz").json()
        assert ready["checks"]["routing"] == "ok"  # the last good routing still serves
        assert "routing_invalid" in (tmp_path / "api.log").read_text()
    finally:
        stop_api(api)


def test_missing_routing_file_is_not_ready_until_it_appears(
    stack: EmbeddedStack, tmp_path: Path
) -> None:
    routing = tmp_path / "later.yaml"  # the operator has not written the ConfigMap yet
    import os
    import subprocess

    from ragapi.embedded import free_port
    from tests.conftest import RAGLINE

    port = free_port()
    env = {**os.environ, **stack.environ(), "RAGLINE_ROUTING_FILE": str(routing)}
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [RAGLINE, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"{url}/readyz", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, "the API exited instead of waiting for its routing"
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert ready.status_code == 503
        assert "does not exist" in ready.json()["checks"]["routing"]
        routing.write_text(FIRST)
        deadline = time.monotonic() + 20
        while httpx.get(f"{url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "routing file not picked up"
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.wait(20)
