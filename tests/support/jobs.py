"""Waiting for an ingestion job through the API, as a client would."""

from __future__ import annotations

import time
from typing import Any

import httpx

FINAL = frozenset({"succeeded", "failed", "dead"})


def wait_job(
    client: httpx.Client, url: str, states: set[str] | frozenset[str] = FINAL, timeout: float = 60
) -> dict[str, Any]:
    """Poll the job's status URL until it reaches one of ``states`` (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(url).json()
        if body["state"] in states:
            return body
        assert time.monotonic() < deadline, f"job stuck in {body['state']}: {body}"
        time.sleep(0.2)
