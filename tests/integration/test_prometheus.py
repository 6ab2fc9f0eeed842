"""Every dashboard panel and every alert rule, evaluated by a real Prometheus (Debian's
package, hack/install-prometheus.sh) scraping a real Ragline API process under a small,
bounded load: ingests (synchronous and queued), searches, plain and streamed queries, a
provider fault that opens a breaker, a budget crossing, a provider rate limit, slow answers,
failing embeddings (tests/support/prometheus.py).

Each query is sent to /api/v1/query: it must parse, and must return at least one series;
the test names every panel or rule that does not. Queries over metrics only the operator
exports must parse here; tests/cluster/test_prometheus_operator.py scrapes a real operator
too and requires them to return series (``check_every_query(prom, operator=True)``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragapi.embedded import EmbeddedStack
from tests.conftest import ApiProcess
from tests.support.prometheus import (
    API_JOB,
    NAMESPACE,
    Prometheus,
    ScrapeTarget,
    check_every_query,
    drive_load,
    obs_api_process,
)
from tests.support.provider_server import ProviderServer

pytestmark = pytest.mark.integration


@pytest.fixture()
def obs_api(
    private_stack: EmbeddedStack, provider: ProviderServer, tmp_path: Path
) -> Iterator[ApiProcess]:
    with obs_api_process(private_stack, provider, tmp_path) as api:
        yield api


@pytest.fixture()
def prometheus(tmp_path: Path, obs_api: ApiProcess) -> Iterator[Prometheus]:
    target = ScrapeTarget(API_JOB, obs_api.url.removeprefix("http://"))
    prom = Prometheus(tmp_path, [target])
    try:
        yield prom.start()
    finally:
        prom.stop()


def test_every_panel_and_rule_returns_series(
    obs_api: ApiProcess, prometheus: Prometheus, provider: ProviderServer
) -> None:
    started = time.monotonic()
    up = prometheus.wait_for(f'up{{job="{API_JOB}"}} == 1')
    assert up[0]["metric"]["namespace"] == NAMESPACE  # as Kubernetes SD would label it
    drive_load(obs_api, prometheus, provider)
    report = check_every_query(prometheus, operator=False)
    print(report)
    print(f"load + checks: {time.monotonic() - started:.1f} s")
