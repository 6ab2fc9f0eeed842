"""Operator reconcile latency against a real kube-apiserver (index builds excluded).

1. One InferencePool: ``kubectl apply`` → ``status.phase == Ready`` with the current
   ``observedGeneration``, repeated for distinct pools (p50/max).
2. One RagIndex: apply → the build Job exists and status says Building (the reconcile's
   work; the HNSW build itself is a Job, measured by the retrieval benchmark).
3. 100 InferencePools applied in one request → all Ready.

Goals: ≤ 2 s for one, ≤ 30 s for 100.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from ragapi.embedded import EmbeddedStack, free_port, free_ports

REPO = Path(__file__).resolve().parent.parent
HACK = REPO / "hack"
NS = "bench"


class Kubectl:
    def __init__(self, kubeconfig: Path, env: dict[str, str]) -> None:
        self.bin = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or "kubectl"
        self.kubeconfig, self.env = kubeconfig, env

    def __call__(self, *args: str, input: str | None = None) -> str:
        out = subprocess.run(
            [self.bin, f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr}")
        return out.stdout


def _pool(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ragline.dev/v1alpha1",
        "kind": "InferencePool",
        "metadata": {"name": name},
        "spec": {"purpose": "chat", "providers": [{"name": "e", "type": "extractive"}]},
    }


def _ready(items: list[dict[str, Any]]) -> set[str]:
    return {
        i["metadata"]["name"]
        for i in items
        if (i.get("status") or {}).get("phase") == "Ready"
        and (i.get("status") or {}).get("observedGeneration") == i["metadata"]["generation"]
    }


def _wait(kubectl: Kubectl, kind: str, names: set[str], timeout: float = 120) -> float:
    started = time.perf_counter()
    while True:
        items = json.loads(kubectl("-n", NS, "get", kind, "-o", "json"))["items"]
        if names <= _ready(items):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{len(names - _ready(items))} {kind} not ready")
        time.sleep(0.05)


def run(quick: bool = False) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ragline-bench-op-"))
    etcd, peer, api = free_ports(3)
    env = {
        **os.environ,
        "RAGLINE_CLUSTER_DIR": str(work / "cluster"),
        "RAGLINE_ETCD_PORT": str(etcd),
        "RAGLINE_ETCD_PEER_PORT": str(peer),
        "RAGLINE_APISERVER_PORT": str(api),
    }
    env.pop("KUBECONFIG", None)
    stack = EmbeddedStack(work / "stack")
    operator: subprocess.Popen[bytes] | None = None
    results: dict[str, Any] = {}
    try:
        up = subprocess.run(
            [str(HACK / "cluster-up.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=True,
        )
        kubeconfig = Path(up.stdout.strip().splitlines()[-1])
        kubectl = Kubectl(kubeconfig, env)
        kubectl("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl("wait", "--for=condition=established", "--timeout=60s", "crd", "--all")
        kubectl("create", "namespace", NS)
        stack.start()
        kubectl(
            "-n",
            NS,
            "create",
            "secret",
            "generic",
            "ragline-db",
            f"--from-literal=databaseUrl={stack.postgres.url}",
        )
        op_env = {
            **env,
            **stack.environ(),
            "RAGLINE_DATABASE_URL": stack.postgres.url,  # the owner role: DDL, counts
            "KUBECONFIG": str(kubeconfig),
            "RAGLINE_DATABASE_SECRET_NAME": "ragline-db",
            "RAGLINE_METRICS_ADDRESS": "127.0.0.1",
            "RAGLINE_METRICS_PORT": str(free_port()),
            "RAGLINE_LOG_LEVEL": "WARNING",
        }
        operator = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "ragline"),
                "operator",
                "--namespace",
                NS,
                "--liveness-host",
                "127.0.0.1",
                "--liveness-port",
                str(free_port()),
            ],
            env=op_env,
            stdout=subprocess.DEVNULL,
            stderr=(work / "operator.log").open("wb"),
        )
        _wait(kubectl, "inferencepools", set(), timeout=30)  # API reachable
        warm = _pool("warmup")
        kubectl("-n", NS, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(warm))
        _wait(kubectl, "inferencepools", {"warmup"})

        singles = []
        for n in range(5 if quick else 10):
            started = time.perf_counter()
            kubectl(
                "-n",
                NS,
                "apply",
                "--server-side",
                "-f",
                "-",
                input=yaml.safe_dump(_pool(f"one-{n}")),
            )
            _wait(kubectl, "inferencepools", {f"one-{n}"})
            singles.append(time.perf_counter() - started)
        results["one_pool_seconds"] = {
            "p50": statistics.median(singles),
            "max": max(singles),
            "n": len(singles),
        }

        index = {
            "apiVersion": "ragline.dev/v1alpha1",
            "kind": "RagIndex",
            "metadata": {"name": "idx"},
            "spec": {},
        }
        started = time.perf_counter()
        kubectl("-n", NS, "apply", "--server-side", "-f", "-", input=yaml.safe_dump(index))
        while True:
            got = json.loads(kubectl("-n", NS, "get", "ragindex", "idx", "-o", "json"))
            if (got.get("status") or {}).get("phase") == "Building":
                break
            time.sleep(0.05)
        results["one_ragindex_to_building_seconds"] = time.perf_counter() - started

        count = 20 if quick else 100
        many = yaml.safe_dump_all([_pool(f"many-{n:03d}") for n in range(count)])
        started = time.perf_counter()
        kubectl("-n", NS, "apply", "--server-side", "-f", "-", input=many)
        _wait(kubectl, "inferencepools", {f"many-{n:03d}" for n in range(count)}, timeout=300)
        results["many_pools"] = {"count": count, "seconds": time.perf_counter() - started}
    finally:
        if operator is not None:
            operator.terminate()
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                operator.kill()
        stack.stop()
        subprocess.run([str(HACK / "cluster-down.sh")], env=env, capture_output=True, timeout=120)
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
