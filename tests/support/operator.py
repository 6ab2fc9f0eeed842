"""Driving the operator in a control plane where no pod runs: the operator process, and
what the kubelet and the Job controller would do for its index-build Jobs."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ragapi.embedded import EmbeddedStack, free_port
from tests.cluster.conftest import Cluster

RAGLINE = str(Path(sys.executable).parent / "ragline")


class Operator:
    """``ragline operator`` watching one namespace, its metrics on 127.0.0.1."""

    def __init__(self, cluster: Cluster, stack: EmbeddedStack, namespace: str, log: Path) -> None:
        self.namespace = namespace
        self.log = log
        self.metrics_port = free_port()
        self.env = {
            **cluster.env,
            "KUBECONFIG": str(cluster.kubeconfig),
            **stack.environ(),
            # The operator does DDL and cross-tenant counts: the owner role, not the API's.
            "RAGLINE_DATABASE_URL": stack.postgres.url,
            "RAGLINE_DATABASE_SECRET_NAME": "ragline-db",
            "RAGLINE_METRICS_ADDRESS": "127.0.0.1",
            "RAGLINE_METRICS_PORT": str(self.metrics_port),
            "RAGLINE_JOB_POLL_SECONDS": "1",
            "RAGLINE_STATUS_REFRESH_SECONDS": "1",
            "RAGLINE_IMAGE": "ragline:test",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def start(self) -> Operator:
        self.proc = subprocess.Popen(
            [
                RAGLINE,
                "operator",
                "--namespace",
                self.namespace,
                "--liveness-host",
                "127.0.0.1",
                "--liveness-port",
                str(free_port()),
            ],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        """No graceful shutdown: as a node failure or an OOM kill would end it."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()

    def stop(self) -> None:
        self.terminate()
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def get(cluster: Cluster, ns: str, kind: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("-n", ns, "get", kind, name, "-o", "json", check=False)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def apply(cluster: Cluster, ns: str, *docs: dict[str, Any]) -> None:
    text = yaml.safe_dump_all(docs)
    cluster.kubectl("-n", ns, "apply", "--server-side", "-f", "-", input=text)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30, why: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{why}")
        time.sleep(0.3)


def build_job(cluster: Cluster, ns: str, index: str) -> str | None:
    out = cluster.kubectl("-n", ns, "get", "jobs", "-l", f"ragline.dev/index={index}", "-o", "json")
    items = json.loads(out.stdout)["items"]
    return items[0]["metadata"]["name"] if len(items) == 1 else None


def patch_job_status(cluster: Cluster, ns: str, job: str, status: dict[str, Any]) -> None:
    cluster.kubectl(
        "-n",
        ns,
        "patch",
        "job",
        job,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def _condition(kind: str, reason: str, now: str) -> dict[str, str]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": "set by the test",
    }


def run_job_and_complete(cluster: Cluster, ns: str, job_name: str) -> None:
    """What the kubelet would do: run the Job's container command, then record success."""
    job = get(cluster, ns, "job", job_name)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = dict(cluster.env)
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            secret = get(cluster, ns, "secret", ref["name"])
            env[var["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    out = subprocess.run(
        [RAGLINE, *container["args"]], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch_job_status(
        cluster,
        ns,
        job_name,
        {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "ready": 0,
            "active": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                _condition("SuccessCriteriaMet", "CompletionsReached", now),
                _condition("Complete", "CompletionsReached", now),
            ],
        },
    )


def fail_job(cluster: Cluster, ns: str, job_name: str) -> None:
    """What the Job controller records when the pod failed more than backoffLimit times."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch_job_status(
        cluster,
        ns,
        job_name,
        {
            "startTime": now,
            "failed": 4,
            "ready": 0,
            "active": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                _condition("FailureTarget", "BackoffLimitExceeded", now),
                _condition("Failed", "BackoffLimitExceeded", now),
            ],
        },
    )
