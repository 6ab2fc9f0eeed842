"""The embedded stack leaves no process behind, even when its parent is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.integration

CHILD = """
import sys, time
from pathlib import Path
from ragapi.embedded import EmbeddedStack
s = EmbeddedStack(Path(sys.argv[1])); s.start()
print(s.postgres._proc.pid, s.redis._proc.pid, flush=True)
time.sleep(120)
"""


def test_servers_die_with_a_killed_parent(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 20
    while any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids
    ):
        assert time.monotonic() < deadline, "embedded servers outlived their parent"
        time.sleep(0.1)
