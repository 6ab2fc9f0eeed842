#!/usr/bin/env python3
"""Ragline's Grafana dashboards and Prometheus alert rules, as code.

    python dashboards/generate.py --write   # regenerate dashboards/*.json, alerts, chart copies
    python dashboards/generate.py --check   # exit 1 (naming the files) when any is stale

One source for everything Grafana and Prometheus see of Ragline:

- ``dashboards/*.json``: one Grafana dashboard per file, built with grafana-foundation-sdk,
  written with sorted keys so a diff shows only real changes;
- ``dashboards/alerts/ragline.rules.yaml``: a plain Prometheus rule file (``promtool check
  rules`` reads it as it is), unit-tested by ``dashboards/alerts/tests/*.yaml``;
- identical copies under ``charts/ragline/files/`` that the chart turns into one ConfigMap
  per dashboard (Grafana sidecar label) and a PrometheusRule.

Every query filters on ``namespace=~"$namespace"``: Prometheus adds ``namespace`` to each
scraped series (Kubernetes service discovery, or a static label outside a cluster). The
data source is a variable, so the dashboards import into any Grafana unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import bargauge, common, stat, statetimeline, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CHART_FILES = REPO / "charts" / "ragline" / "files"
RULES_NAME = "ragline.rules.yaml"
COMMAND = "python dashboards/generate.py --write"

# ----------------------------------------------------------------- PromQL building blocks

NS = 'namespace=~"$namespace"'
INDEX = 'index=~"$index"'
PROVIDER = 'provider=~"$provider"'
RATE = "$__rate_interval"
NOT_PROBES = 'route!~"/healthz|/readyz|/metrics"'
ERRORS = 'status=~"5.."'
QUERY_ROUTE = 'route="/v1/indexes/{index}/query"'
DEAD = 'result="dead"'
NO_RESULT = 'le="0.0"'  # prometheus_client writes bucket bounds as floats
HIT = 'result="hit"'
SUCCESS = 'outcome="success"'
REUSED = 'result="reused"'
EMBEDDED = 'result=~"reused|written"'
DOC_WRITES = ('route=~"/v1/indexes/.+/documents.*"', 'method=~"POST|PUT"')

# SLOs. Latency: the share of /query responses slower than 2.5 s, the bucket boundary of
# ragline_http_request_duration_seconds nearest the 2 s target.
AVAILABILITY_SLO = 0.999
LATENCY_SLO = 0.99
LATENCY_THRESHOLD = "2.5"
# Burn-rate windows after the Google SRE workbook (chapter "Alerting on SLOs"): a page when
# 2% of a 30-day error budget burns in 1 h (14.4x) or 5% in 6 h (6x), a ticket when 10% burns
# in 1 day (3x) or 3 days (1x). Each long window is paired with a short one (1/12 of it), so
# an alert resolves soon after the burn stops.
PAGE_WINDOWS = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
TICKET_WINDOWS = (("1d", "2h", 3.0), ("3d", "6h", 1.0))
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def sel(metric: str, *matchers: str, ns: str = NS) -> str:
    """A vector selector; every ragline_* selector carries the namespace matcher."""
    return f"{metric}{{{','.join((ns, *matchers) if ns else matchers)}}}"


def rate(metric: str, *matchers: str, window: str = RATE, ns: str = NS) -> str:
    return f"rate({sel(metric, *matchers, ns=ns)}[{window}])"


def sum_rate(by: str, metric: str, *matchers: str, window: str = RATE, ns: str = NS) -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} ({rate(metric, *matchers, window=window, ns=ns)})"


def quantile(q: float, histogram: str, by: str, *matchers: str) -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, {sum_rate(group, histogram + '_bucket', *matchers)})"


def div(numerator: str, denominator: str) -> str:
    return f"{numerator} / {denominator}"


def error_ratio(window: str, by: str = "", ns: str = NS, sep: str = " / ") -> str:
    """Share of 5xx among non-probe HTTP responses."""
    errors = sum_rate(by, "ragline_http_requests_total", NOT_PROBES, ERRORS, window=window, ns=ns)
    total = sum_rate(by, "ragline_http_requests_total", NOT_PROBES, window=window, ns=ns)
    return f"{errors}{sep}{total}"


def slow_query_ratio(window: str, by: str = "", ns: str = NS, sep: str = " / ") -> str:
    """Share of /query responses slower than the latency threshold."""
    fast = sum_rate(
        by,
        "ragline_http_request_duration_seconds_bucket",
        QUERY_ROUTE,
        f'le="{LATENCY_THRESHOLD}"',
        window=window,
        ns=ns,
    )
    total = sum_rate(
        by, "ragline_http_request_duration_seconds_count", QUERY_ROUTE, window=window, ns=ns
    )
    if "\n" in sep:
        return f"1 - (\n{fast}{sep}{total}\n)"
    return f"1 - ({fast}{sep}{total})"


def ingest_failure_ratio(window: str, by: str = "", ns: str = NS, sep: str = " / ") -> str:
    """(Synchronous document writes answered 5xx + jobs dead-lettered) / document writes."""
    failed = (
        f"{rate('ragline_http_requests_total', *DOC_WRITES, ERRORS, window=window, ns=ns)}"
        f" or {rate('ragline_ingest_jobs_total', DEAD, window=window, ns=ns)}"
    )
    grouping = f" by ({by})" if by else ""
    writes = sum_rate(by, "ragline_http_requests_total", *DOC_WRITES, window=window, ns=ns)
    return f"sum{grouping} ({failed}){sep}{writes}"


# ------------------------------------------------------------------ dashboard helpers

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"


def target(expr: str, legend: str = "__auto", ref: str = "A") -> Any:
    return (
        prom.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .datasource(DATASOURCE)
        .editor_mode("code")
        .range()
    )


def targets(*pairs: tuple[str, str]) -> list[Any]:
    return [target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def thresholds(*steps: tuple[float | None, str]) -> Any:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def legend() -> Any:
    return (
        common.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE)
        .placement(cm.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["mean", "max", "lastNotNull"])
    )


def graph(
    title: str,
    description: str,
    queries: list[Any],
    unit: str = "short",
    *,
    width: int = 12,
    height: int = 8,
    steps: tuple[tuple[float | None, str], ...] = (),
    minimum: float | None = 0,
) -> Any:
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(queries)
        .unit(unit)
        .span(width)
        .height(height)
        .legend(legend())
        .tooltip(
            common.VizTooltipOptions()
            .mode(cm.TooltipDisplayMode.MULTI)
            .sort(cm.SortOrder.DESCENDING)
        )
        .line_width(1)
        .fill_opacity(10)
        .show_points(cm.VisibilityMode.NEVER)
    )
    if minimum is not None:
        p = p.min(minimum)
    if steps:
        p = p.thresholds(thresholds(*steps)).thresholds_style(
            common.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)
        )
    return p


def single(
    title: str,
    description: str,
    queries: list[Any],
    unit: str = "short",
    *,
    width: int = 6,
    height: int = 5,
    steps: tuple[tuple[float | None, str], ...] = ((None, GREEN),),
    mappings: list[Any] | None = None,
) -> Any:
    p = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(queries)
        .unit(unit)
        .span(width)
        .height(height)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .text_mode(cm.BigValueTextMode.AUTO)
        .thresholds(thresholds(*steps))
    )
    if mappings:
        p = p.mappings(mappings)
    return p


def value_map(values: dict[str, tuple[str, str]]) -> list[Any]:
    return [
        dm.ValueMap(
            {
                k: dm.ValueMappingResult(text=text, color=color, index=i)
                for i, (k, (text, color)) in enumerate(values.items())
            }
        )
    ]


def all_option() -> Any:
    return dm.VariableOption(selected=True, text="All", value="$__all")


def query_variable(name: str, label: str, query: str, description: str) -> Any:
    return (
        db.QueryVariable(name)
        .label(label)
        .description(description)
        .datasource(DATASOURCE)
        .query(query)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(all_option())
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
    )


def datasource_variable() -> Any:
    return (
        db.DatasourceVariable("datasource")
        .label("Data source")
        .description("The Prometheus that scrapes Ragline")
        .type("prometheus")
    )


def namespace_variable(source: str = "ragline_build_info") -> Any:
    return query_variable(
        "namespace",
        "Namespace",
        f"label_values({source}, namespace)",
        "Kubernetes namespaces running Ragline",
    )


def index_variable() -> Any:
    return query_variable(
        "index",
        "Index",
        'label_values({__name__=~"ragline_retrieval_duration_seconds_count|'
        'ragline_ingest_documents_total|ragline_index_build_seconds_count",'
        f"{NS}}}, index)",
        "RagIndex names",
    )


def provider_variable() -> Any:
    return query_variable(
        "provider",
        "Provider",
        f"label_values(ragline_provider_requests_total{{{NS}}}, provider)",
        "Providers of the InferencePools",
    )


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[Any],
    rows: list[tuple[str, list[Any]]],
) -> dict[str, Any]:
    d = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["ragline"])
        .time("now-3h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .editable()
        .link(
            db.DashboardLink("Ragline")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["ragline"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(datasource_variable())
    )
    for v in variables:
        d = d.with_variable(v)
    for row_title, panels in rows:
        d = d.with_row(db.Row(row_title))
        for p in panels:
            d = d.with_panel(p)
    out: dict[str, Any] = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    for n, panel in enumerate(out["panels"], start=1):
        panel["id"] = n
    # Grafana's own default: the built-in annotations (alerts, user annotations).
    out["annotations"] = {
        "list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            }
        ]
    }
    return out


# ----------------------------------------------------------------------- dashboards


def overview() -> dict[str, Any]:
    http = "ragline_http_requests_total"
    burn_steps = ((None, GREEN), (1, YELLOW), (6, ORANGE), (14.4, RED))
    slo = [
        single(
            "Requests / s",
            "HTTP requests per second, health probes and /metrics excluded.",
            [target(sum_rate("", http, NOT_PROBES))],
            "reqps",
            width=4,
        ),
        single(
            "Error ratio (5xx)",
            "Share of responses with a 5xx status. The availability SLO allows 0.1%.",
            [
                target(
                    div(
                        f"({sum_rate('', http, NOT_PROBES, ERRORS)} or vector(0))",
                        sum_rate("", http, NOT_PROBES),
                    )
                )
            ],
            "percentunit",
            width=4,
            steps=((None, GREEN), (0.001, YELLOW), (0.0144, RED)),
        ),
        single(
            "Availability burn rate (1h)",
            "How fast the 30-day error budget of the 99.9% availability SLO burns: 1 spends it "
            "in exactly 30 days, 14.4 in 2 days (RaglineAvailabilityBurnRateFast pages).",
            [target(f"({error_ratio('1h')}) / {1 - AVAILABILITY_SLO:g}")],
            "x",
            width=4,
            steps=burn_steps,
        ),
        single(
            "Latency burn rate (1h)",
            "Burn rate of the latency SLO: 99% of /query answers within 2.5 s.",
            [target(f"({slow_query_ratio('1h')}) / {1 - LATENCY_SLO:g}")],
            "x",
            width=4,
            steps=burn_steps,
        ),
        single(
            "Dependencies",
            "Postgres, Redis and the routing file as each API pod last saw them "
            "(the worst pod wins).",
            [target(f"min by (dependency) ({sel('ragline_dependency_up')})", "{{dependency}}")],
            width=4,
            steps=((None, RED), (1, GREEN)),
            mappings=value_map({"0": ("down", RED), "1": ("up", GREEN)}),
        ),
        single(
            "Versions",
            "API pods per Ragline version: more than one during a rollout.",
            [target(f"count by (version) ({sel('ragline_build_info')})", "{{version}}")],
            width=4,
            steps=((None, BLUE),),
        ),
    ]
    traffic = [
        graph(
            "Requests / s by route",
            "Route templates, never raw paths.",
            [target(sum_rate("route", http, NOT_PROBES), "{{route}}")],
            "reqps",
        ),
        graph(
            "Responses / s by status",
            "429 is a rate limit or a budget that rejects; 502/503 mean every provider failed.",
            [target(sum_rate("status", http, NOT_PROBES), "{{status}}")],
            "reqps",
        ),
        graph(
            "Error ratio (5xx) by route",
            "Only routes that answered 5xx appear.",
            [target(error_ratio(RATE, "route"), "{{route}}")],
            "percentunit",
        ),
        graph(
            "Rate-limit rejections / s by scope",
            "key: a caller over its rate; ip: before authentication; provider_rpm/tpm: a "
            "ProviderBudget's rate; store_unavailable: Redis down (fail open or closed).",
            [target(sum_rate("scope", "ragline_ratelimit_rejections_total"), "{{scope}}")],
            "reqps",
        ),
    ]
    latency = [
        graph(
            f"p{int(q * 100)} latency by route",
            f"{int(q * 100)}th percentile of the time to the last body byte "
            "(a streamed answer counts until its end).",
            [
                target(
                    quantile(q, "ragline_http_request_duration_seconds", "route", NOT_PROBES),
                    "{{route}}",
                )
            ],
            "s",
            width=8,
        )
        for q in (0.5, 0.95, 0.99)
    ]
    burn = [
        graph(
            "Availability SLO burn rate (99.9%, 5xx)",
            "Burn rate over three windows; the fast alert needs 1h and 5m above 14.4, the "
            "medium one 6h and 30m above 6.",
            targets(
                *((f"({error_ratio(w)}) / {1 - AVAILABILITY_SLO:g}", w) for w in ("5m", "1h", "6h"))
            ),
            "x",
            steps=((None, GREEN), (6, ORANGE), (14.4, RED)),
        ),
        graph(
            "Latency SLO burn rate (99% of /query within 2.5 s)",
            "Share of /query answers slower than 2.5 s, divided by the 1% the SLO allows.",
            targets(
                *((f"({slow_query_ratio(w)}) / {1 - LATENCY_SLO:g}", w) for w in ("5m", "1h", "6h"))
            ),
            "x",
            steps=((None, GREEN), (6, ORANGE), (14.4, RED)),
        ),
    ]
    return dashboard(
        "ragline-overview",
        "Ragline / Overview",
        "RED metrics of the Ragline API and its SLOs (availability 99.9%, 99% of /query "
        "within 2.5 s). Start here when an alert fires.",
        [namespace_variable()],
        [
            ("Service level", slo),
            ("Traffic", traffic),
            ("Latency", latency),
            ("SLO burn rate", burn),
        ],
    )


def retrieval() -> dict[str, Any]:
    dur = "ragline_retrieval_duration_seconds"
    res = "ragline_retrieval_results"
    search = [
        graph(
            "Searches / s by index and strategy",
            "Every /search and /query retrieves; strategy is the vector plan Postgres used.",
            [target(sum_rate("index, strategy", f"{dur}_count", INDEX), "{{index}} {{strategy}}")],
            "ops",
        ),
        graph(
            "Retrieval latency p95 by strategy",
            "SQL time of the vector + full-text search (embedding excluded).",
            [target(quantile(0.95, dur, "strategy", INDEX), "{{strategy}}")],
            "s",
        ),
        graph(
            "Retrieval latency p50 / p99 by index",
            "",
            targets(
                (quantile(0.5, dur, "index", INDEX), "{{index}} p50"),
                (quantile(0.99, dur, "index", INDEX), "{{index}} p99"),
            ),
            "s",
        ),
        graph(
            "HTTP latency p95: /search and /query",
            "End to end, including embedding and (for /query) the answer.",
            [
                target(
                    quantile(
                        0.95,
                        "ragline_http_request_duration_seconds",
                        "route",
                        'route=~"/v1/indexes/.+/(search|query)"',
                    ),
                    "{{route}}",
                )
            ],
            "s",
        ),
    ]
    results = [
        graph(
            "Results per search (mean) by index",
            "",
            [
                target(
                    div(
                        sum_rate("index", f"{res}_sum", INDEX),
                        sum_rate("index", f"{res}_count", INDEX),
                    ),
                    "{{index}}",
                )
            ],
        ),
        graph(
            "Searches with no result (share) by index",
            "A rising share means questions about content that is not indexed, or filters "
            "that exclude everything.",
            [
                target(
                    div(
                        sum_rate("index", f"{res}_bucket", INDEX, NO_RESULT),
                        sum_rate("index", f"{res}_count", INDEX),
                    ),
                    "{{index}}",
                )
            ],
            "percentunit",
        ),
        graph(
            "HNSW ef_search (median) by index",
            "The ef_search each search ran with (the index default or the request's).",
            [target(quantile(0.5, "ragline_retrieval_ef_search", "index", INDEX), "{{index}}")],
        ),
    ]
    embedding = [
        graph(
            "Query embedding latency p95 by model",
            "",
            [
                target(
                    quantile(0.95, "ragline_embedding_duration_seconds", "model", 'kind="query"'),
                    "{{model}}",
                )
            ],
            "s",
        ),
        graph(
            "Answer cache hit ratio",
            "Share of /query answers served from the Redis answer cache.",
            [
                target(
                    div(
                        sum_rate("", "ragline_cache_requests_total", HIT),
                        sum_rate("", "ragline_cache_requests_total"),
                    ),
                    "hit ratio",
                )
            ],
            "percentunit",
        ),
    ]
    return dashboard(
        "ragline-retrieval",
        "Ragline / Retrieval",
        "Hybrid retrieval: search rate, latency by strategy, results, ef_search, answer cache.",
        [namespace_variable(), index_variable()],
        [("Search", search), ("Results", results), ("Embedding and cache", embedding)],
    )


def providers() -> dict[str, Any]:
    calls = "ragline_provider_requests_total"
    lat = "ragline_provider_latency_seconds"
    call_panels = [
        graph(
            "Provider calls / s by provider and outcome",
            "Every attempt, retries included.",
            [target(sum_rate("provider, outcome", calls, PROVIDER), "{{provider}} {{outcome}}")],
            "ops",
        ),
        graph(
            "Fallbacks / s by provider and reason",
            "Attempts that did not succeed, so the router retried or fell through to the next "
            "provider: timeout, connection, rate_limited, server_error, client_error, "
            "bad_response, circuit_open, budget_exhausted, budget_unavailable.",
            [
                target(
                    sum_rate("provider, outcome", calls, PROVIDER, 'outcome!="success"'),
                    "{{provider}} {{outcome}}",
                )
            ],
            "ops",
        ),
        graph(
            "Success ratio by provider",
            "",
            [
                target(
                    div(
                        sum_rate("provider", calls, PROVIDER, SUCCESS),
                        sum_rate("provider", calls, PROVIDER),
                    ),
                    "{{provider}}",
                )
            ],
            "percentunit",
        ),
        graph(
            "Provider latency p50 / p95 by provider",
            "Successful calls; a streamed answer counts until its last token.",
            targets(
                (quantile(0.5, lat, "provider", PROVIDER), "{{provider}} p50"),
                (quantile(0.95, lat, "provider", PROVIDER), "{{provider}} p95"),
            ),
            "s",
        ),
    ]
    health = [
        statetimeline.Panel()
        .title("Circuit breaker state")
        .description(
            "Per provider, the worst API pod. Open: calls skip the provider until the "
            "cooldown ends."
        )
        .datasource(DATASOURCE)
        .targets(
            [
                target(
                    f"max by (provider) ({sel('ragline_circuit_state', PROVIDER)})", "{{provider}}"
                )
            ]
        )
        .span(12)
        .height(8)
        .min(0)
        .max(2)
        .thresholds(thresholds((None, GREEN), (1, YELLOW), (2, RED)))
        .mappings(
            value_map({"0": ("closed", GREEN), "1": ("half-open", YELLOW), "2": ("open", RED)})
        )
        .show_value(cm.VisibilityMode.AUTO)
        .merge_values(True)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
        ),
        graph(
            "Tokens / s by provider and direction",
            "As the providers report them (usage).",
            [
                target(
                    sum_rate("provider, direction", "ragline_provider_tokens_total", PROVIDER),
                    "{{provider}} {{direction}}",
                )
            ],
        ),
        graph(
            "Calls refused by budgets and provider rates / s",
            "budget_exhausted: the ProviderBudget's limit is reached (onExhausted decides what the "
            "caller gets); budget_unavailable: Redis down, budgets fail closed; rate_limited "
            "includes the budget's requests/tokens per minute.",
            [
                target(
                    sum_rate(
                        "provider, outcome",
                        calls,
                        PROVIDER,
                        'outcome=~"budget_exhausted|budget_unavailable|rate_limited"',
                    ),
                    "{{provider}} {{outcome}}",
                )
            ],
            "ops",
        ),
        graph(
            "Provider rate-limit rejections / s",
            "ProviderBudget requestsPerMinute / tokensPerMinute.",
            [
                target(
                    sum_rate("scope", "ragline_ratelimit_rejections_total", 'scope=~"provider_.*"'),
                    "{{scope}}",
                )
            ],
            "ops",
        ),
    ]
    budgets = [
        graph(
            "Spend vs limit per budget (USD, current period)",
            "From the Redis counters every API pod writes, read by the operator every "
            "statusRefreshSeconds. budget is namespace/name.",
            targets(
                (f"max by (budget) ({sel('ragline_budget_spent_usd')})", "{{budget}} spent"),
                (f"max by (budget) ({sel('ragline_budget_limit_usd')})", "{{budget}} limit"),
            ),
            "currencyUSD",
        ),
        bargauge.Panel()
        .title("Budget used (share of its tightest limit)")
        .description(
            "The largest of spent/limit over the budget's USD, token and request limits. "
            "RaglineBudgetNearlyExhausted fires at 80%."
        )
        .datasource(DATASOURCE)
        .targets([target(f"max by (budget) ({sel('ragline_budget_used_ratio')})", "{{budget}}")])
        .unit("percentunit")
        .min(0)
        .max(1)
        .span(12)
        .height(8)
        .thresholds(thresholds((None, GREEN), (0.8, ORANGE), (1, RED)))
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)),
    ]
    return dashboard(
        "ragline-providers",
        "Ragline / Providers & budgets",
        "The provider router: calls and outcomes, fallbacks, circuit breakers, tokens, "
        "ProviderBudget spend against its limit.",
        [namespace_variable(), provider_variable()],
        [("Calls", call_panels), ("Health and refusals", health), ("Budgets", budgets)],
    )


def ingestion() -> dict[str, Any]:
    docs = "ragline_ingest_documents_total"
    chunks = "ragline_ingest_chunks_total"
    emb = "ragline_embedding_duration_seconds"
    throughput = [
        graph(
            "Documents / s by index and result",
            "created, updated, unchanged (an identical re-upload writes nothing).",
            [target(sum_rate("index, result", docs, INDEX), "{{index}} {{result}}")],
            "ops",
        ),
        graph(
            "Chunks / s by result",
            "written: embedded and inserted; reused: unchanged text, no embedding; retired: "
            "dropped from the live version.",
            [target(sum_rate("result", chunks, INDEX), "{{result}}")],
            "ops",
        ),
        graph(
            "Embedding reuse by index",
            "Share of chunks that needed no new embedding (content hash unchanged).",
            [
                target(
                    div(
                        sum_rate("index", chunks, INDEX, REUSED),
                        sum_rate("index", chunks, INDEX, EMBEDDED),
                    ),
                    "{{index}}",
                )
            ],
            "percentunit",
        ),
        graph(
            "Embedder throughput (texts / s) by model and kind",
            "kind document: ingestion; kind query: questions and searches.",
            [
                target(
                    sum_rate("model, kind", "ragline_embedded_texts_total"),
                    "{{model}} {{kind}}",
                )
            ],
            "ops",
        ),
        graph(
            "Embedding call latency p95 by model and kind",
            "One call embeds a batch of chunks (document) or one question (query).",
            [target(quantile(0.95, emb, "model, kind"), "{{model}} {{kind}}")],
            "s",
        ),
        graph(
            "Upload latency p95 by method",
            "Synchronous uploads include parsing, embedding and the write; queued ones (202) "
            "only the enqueue.",
            [
                target(
                    quantile(0.95, "ragline_http_request_duration_seconds", "method", *DOC_WRITES),
                    "{{method}}",
                )
            ],
            "s",
        ),
    ]
    jobs = [
        graph(
            "Job backlog by state",
            "Ingestion jobs in Postgres (every API pod reports the same table-wide count). "
            "queued includes jobs waiting out a retry backoff. RaglineIngestionBacklogGrowing "
            "fires when queued + running keeps growing.",
            [target(f"max by (state) ({sel('ragline_ingest_backlog_jobs')})", "{{state}}")],
        ),
        graph(
            "Job outcomes / s",
            "succeeded; retried (transient failure, back in the queue); failed (permanent: "
            "the document itself is bad); dead (gave up after max attempts).",
            [target(sum_rate("result", "ragline_ingest_jobs_total"), "{{result}}")],
            "ops",
        ),
    ]
    failures = [
        graph(
            "Failed document writes / s by status",
            "4xx: the upload was refused (size, type, unparseable); 5xx: Ragline or its "
            "embedder failed.",
            [
                target(
                    sum_rate(
                        "method, status",
                        "ragline_http_requests_total",
                        *DOC_WRITES,
                        'status=~"[45].."',
                    ),
                    "{{method}} {{status}}",
                )
            ],
            "ops",
        ),
        graph(
            "Ingestion failure ratio",
            "(Synchronous uploads answered 5xx + dead jobs) / uploads. "
            "RaglineIngestionFailures fires above 5% for 10 minutes.",
            [target(ingest_failure_ratio(RATE), "failure ratio")],
            "percentunit",
            steps=((None, GREEN), (0.05, RED)),
        ),
    ]
    return dashboard(
        "ragline-ingestion",
        "Ragline / Ingestion",
        "Document ingestion: throughput, embedding reuse, the job backlog, failures and the "
        "embedder.",
        [namespace_variable(), index_variable()],
        [("Throughput", throughput), ("Jobs", jobs), ("Failures", failures)],
    )


def operator() -> dict[str, Any]:
    total = "ragline_reconcile_total"
    dur = "ragline_reconcile_duration_seconds"
    builds = "ragline_index_build_seconds"
    reconciles = [
        graph(
            "Reconciles / s by kind and outcome",
            "outcome: success, retry (kopf.TemporaryError, retried later), error.",
            [target(sum_rate("kind, outcome", total), "{{kind}} {{outcome}}")],
            "ops",
        ),
        graph(
            "Reconcile errors / s by kind",
            "",
            [target(sum_rate("kind", total, 'outcome!="success"'), "{{kind}}")],
            "ops",
        ),
        graph(
            "Reconcile latency p50 / p95 by kind",
            "",
            targets(
                (quantile(0.5, dur, "kind"), "{{kind}} p50"),
                (quantile(0.95, dur, "kind"), "{{kind}} p95"),
            ),
            "s",
        ),
        graph(
            "Reconciles in flight by kind",
            "The operator's queue depth: handlers running now.",
            [target(f"sum by (kind) ({sel('ragline_reconcile_in_flight')})", "{{kind}}")],
        ),
        single(
            "Time since last successful reconcile",
            "Reconciles run on changes, so this grows while nothing changes; it is a problem "
            "only while reconciles fail (RaglineOperatorNotReconciling).",
            [
                target(
                    "time() - max by (kind) "
                    f"({sel('ragline_reconcile_last_success_timestamp_seconds')})",
                    "{{kind}}",
                )
            ],
            "s",
            width=24,
            steps=((None, BLUE),),
        ),
    ]
    index_builds = [
        graph(
            "Index builds per hour by index",
            "HNSW builds finished by index-build Jobs.",
            [
                target(
                    f"sum by (index) (increase({sel(f'{builds}_count', INDEX)}[1h]))", "{{index}}"
                )
            ],
        ),
        graph(
            "Mean HNSW build time by index",
            "Since the operator started.",
            [
                target(
                    f"sum by (index) ({sel(f'{builds}_sum', INDEX)})"
                    f" / sum by (index) ({sel(f'{builds}_count', INDEX)})",
                    "{{index}}",
                )
            ],
            "s",
        ),
        single(
            "Index builds failing",
            "RagIndexes whose index-build Job failed (phase Failed). RaglineIndexBuildFailed.",
            [target(f"max by (index) ({sel('ragline_index_build_failed', INDEX)})", "{{index}}")],
            width=24,
            steps=((None, GREEN), (1, RED)),
            mappings=value_map({"0": ("ok", GREEN), "1": ("failed", RED)}),
        ),
    ]
    return dashboard(
        "ragline-operator",
        "Ragline / Operator",
        "The control plane: reconcile rate, errors and latency per kind, queue depth, index "
        "builds.",
        [
            namespace_variable('{__name__=~"ragline_build_info|ragline_reconcile_total"}'),
            index_variable(),
        ],
        [("Reconciles", reconciles), ("Index builds", index_builds)],
    )


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "overview.json": overview,
    "retrieval.json": retrieval,
    "providers.json": providers,
    "ingestion.json": ingestion,
    "operator.json": operator,
}

# ---------------------------------------------------------------------- alert rules

RULES_HEADER = f"""\
# Ragline alert rules. GENERATED by dashboards/generate.py: edit that, then run
#   {COMMAND}
# A plain Prometheus rule file (`promtool check rules`); the chart ships the same groups as a
# PrometheusRule (charts/ragline/files/alerts/). Unit tests: dashboards/alerts/tests/.
#
# SLOs, per namespace, over 30 days:
#   availability  {AVAILABILITY_SLO:.1%} of API responses are not 5xx
#                 (health probes and /metrics excluded)
#   latency       {LATENCY_SLO:.0%} of /v1/indexes/{{index}}/query answers finish within
#                 {LATENCY_THRESHOLD} s (the histogram bucket nearest 2 s)
# Burn-rate alerts pair a long and a short window (Google SRE workbook, "Alerting on SLOs"):
#   page   (critical): 14.4x over 1h and 5m, or 6x over 6h and 30m
#   ticket (warning):  3x over 1d and 2h, or 1x over 3d and 6h
"""


def _slo_records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for w in WINDOWS:
        out.append(
            {
                "record": f"namespace:ragline_http_errors:ratio_rate{w}",
                "expr": error_ratio(w, "namespace", ns="", sep="\n/\n"),
            }
        )
    for w in WINDOWS:
        out.append(
            {
                "record": f"namespace:ragline_query_slow:ratio_rate{w}",
                "expr": slow_query_ratio(w, "namespace", ns="", sep="\n/\n"),
            }
        )
    return out


def _burn(sli: str, budget: float, windows: Iterable[tuple[str, str, float]]) -> str:
    parts = [
        f"(\n  namespace:{sli}:ratio_rate{long} > ({factor:g} * {budget:g})\n"
        f"  and\n  namespace:{sli}:ratio_rate{short} > ({factor:g} * {budget:g})\n)"
        for long, short, factor in windows
    ]
    return "\nor\n".join(parts)


def _alert(
    name: str,
    expr: str,
    severity: str,
    summary: str,
    description: str,
    dashboard_uid: str,
    for_: str | None = None,
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "dashboard": dashboard_uid,
    }
    return rule


# Every API pod reports the same table-wide job counts: max across pods, then the states.
BACKLOG = 'ragline_ingest_backlog_jobs{state=~"queued|running"}'
RECONCILE_FAILURES = (
    'sum by (namespace, kind) (increase(ragline_reconcile_total{outcome!="success"}[15m]))'
)


def rules() -> dict[str, Any]:
    err_budget = round(1 - AVAILABILITY_SLO, 6)
    lat_budget = round(1 - LATENCY_SLO, 6)
    slo_alerts = [
        _alert(
            "RaglineAvailabilityBurnRateFast",
            _burn("ragline_http_errors", err_budget, PAGE_WINDOWS),
            "critical",
            "Ragline in {{ $labels.namespace }} is burning its availability error budget fast",
            "{{ $value | humanizePercentage }} of API responses are 5xx (SLO: 99.9% are not); "
            "at this rate the 30-day error budget is gone within days. Overview dashboard: "
            "which route and status; then Providers (all providers failing: 502/503) and the "
            "Dependencies panel (Postgres, Redis).",
            "ragline-overview",
            "2m",
        ),
        _alert(
            "RaglineAvailabilityBurnRateSlow",
            _burn("ragline_http_errors", err_budget, TICKET_WINDOWS),
            "warning",
            "Ragline in {{ $labels.namespace }} is slowly burning its availability error budget",
            "{{ $value | humanizePercentage }} of API responses are 5xx over a day or more: "
            "the 30-day error budget will not last the month.",
            "ragline-overview",
            "15m",
        ),
        _alert(
            "RaglineLatencyBurnRateFast",
            _burn("ragline_query_slow", lat_budget, PAGE_WINDOWS),
            "critical",
            "Ragline /query in {{ $labels.namespace }} is burning its latency error budget fast",
            "{{ $value | humanizePercentage }} of /query answers take longer than 2.5 s "
            "(SLO: 99% within). Compare Providers (provider latency p95, timeouts, retries) with "
            "Retrieval (retrieval latency by strategy, query embedding).",
            "ragline-overview",
            "2m",
        ),
        _alert(
            "RaglineLatencyBurnRateSlow",
            _burn("ragline_query_slow", lat_budget, TICKET_WINDOWS),
            "warning",
            "Ragline /query in {{ $labels.namespace }} is slowly burning its latency error budget",
            "{{ $value | humanizePercentage }} of /query answers take longer than 2.5 s over a "
            "day or more.",
            "ragline-overview",
            "15m",
        ),
    ]
    provider_alerts = [
        _alert(
            "RaglineCircuitBreakerOpen",
            "max by (namespace, provider) (ragline_circuit_state) >= 2",
            "warning",
            "Circuit breaker for provider {{ $labels.provider }} has been open for 5 minutes",
            "Calls skip {{ $labels.provider }} and fall through to the next provider of its pool "
            "(or fail when none is left). Providers dashboard: the outcomes before it opened "
            "(timeout, server_error, rate_limited ...).",
            "ragline-providers",
            "5m",
        ),
        _alert(
            "RaglineBudgetExhausted",
            "sum by (namespace, provider) "
            '(increase(ragline_provider_requests_total{outcome="budget_exhausted"}[5m])) > 0',
            "critical",
            "A ProviderBudget for {{ $labels.provider }} is exhausted",
            "Calls to {{ $labels.provider }} are refused because its ProviderBudget reached its "
            "limit for the period; the budget's onExhausted decides whether callers get the "
            "fallback provider, a degraded answer or 429. Raise the limit or wait for the period "
            "to end (kubectl get providerbudgets).",
            "ragline-providers",
            "1m",
        ),
        _alert(
            "RaglineBudgetNearlyExhausted",
            "max by (namespace, budget) (ragline_budget_used_ratio) >= 0.8",
            "warning",
            "ProviderBudget {{ $labels.budget }} is {{ $value | humanizePercentage }} used",
            "The budget has used at least 80% of its tightest limit (USD, tokens or requests) "
            "for this period.",
            "ragline-providers",
            "5m",
        ),
    ]
    ingestion_alerts = [
        _alert(
            "RaglineIngestionFailures",
            ingest_failure_ratio("15m", "namespace", ns="", sep="\n/\n") + "\n> 0.05",
            "warning",
            "Ingestion in {{ $labels.namespace }} is failing",
            "{{ $value | humanizePercentage }} of document uploads fail (5xx, or jobs "
            "dead-lettered after their last attempt). Ingestion dashboard: failures by status; "
            "Providers: the embedding pool's outcomes; the job errors (GET /v1/jobs/{id}).",
            "ragline-ingestion",
            "10m",
        ),
        _alert(
            "RaglineIngestionBacklogGrowing",
            f"sum by (namespace) (max by (namespace, state) ({BACKLOG})) > 0\n"
            "and\n"
            f"sum by (namespace) (max by (namespace, state) (deriv({BACKLOG}[30m]))) > 0",
            "warning",
            "The ingestion job backlog in {{ $labels.namespace }} keeps growing",
            "{{ $value }} jobs are queued or running and the backlog has grown for 15 minutes: "
            "the workers (RAGLINE_INGEST_WORKERS per API pod, or `ragline worker` pods) do not "
            "keep up, jobs are retrying, or running jobs are stuck until their lease ends. "
            "Ingestion dashboard: job outcomes (retried) and embedder latency.",
            "ragline-ingestion",
            "15m",
        ),
    ]
    operator_alerts = [
        _alert(
            "RaglineIndexBuildFailed",
            "max by (namespace, index) (ragline_index_build_failed) > 0",
            "warning",
            "The HNSW index build of RagIndex {{ $labels.index }} failed",
            "The index-build Job failed and the RagIndex is in phase Failed: searches keep the "
            "previous index, or none. kubectl describe ragindex {{ $labels.index }}; the Job's "
            "pod logs.",
            "ragline-operator",
            "1m",
        ),
        _alert(
            "RaglineOperatorNotReconciling",
            "(\n"
            "  time() - max by (namespace, kind) "
            "(ragline_reconcile_last_success_timestamp_seconds) > 900\n"
            "  and on (namespace, kind)\n"
            f"  {RECONCILE_FAILURES} > 0\n"
            ")\n"
            "or\n"
            "(\n"
            f"  {RECONCILE_FAILURES} > 0\n"
            "  unless on (namespace, kind)\n"
            "  ragline_reconcile_last_success_timestamp_seconds\n"
            ")",
            "warning",
            "The Ragline operator has not reconciled a {{ $labels.kind }} for 15 minutes",
            "Reconciles of {{ $labels.kind }} keep failing and none succeeded for 15 minutes "
            "(reconciles run on changes, so a quiet operator does not fire this). Operator "
            "dashboard: errors by kind; the operator's logs and the resources' Events.",
            "ragline-operator",
            "5m",
        ),
    ]
    return {
        "groups": [
            {"name": "ragline-slo-recording", "rules": _slo_records()},
            {"name": "ragline-slo", "rules": slo_alerts},
            {"name": "ragline-providers", "rules": provider_alerts},
            {"name": "ragline-ingestion", "rules": ingestion_alerts},
            {"name": "ragline-operator", "rules": operator_alerts},
        ]
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def rules_yaml() -> str:
    body = yaml.dump(rules(), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return RULES_HEADER + body


# ----------------------------------------------------------------------------- output


def dashboard_json(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def render() -> dict[Path, str]:
    """Every generated file (relative to the repository) and its content."""
    out: dict[Path, str] = {}
    for name, build in DASHBOARDS.items():
        text = dashboard_json(build())
        out[Path("dashboards") / name] = text
        out[Path("charts/ragline/files/dashboards") / name] = text
    text = rules_yaml()
    out[Path("dashboards/alerts") / RULES_NAME] = text
    out[Path("charts/ragline/files/alerts") / RULES_NAME] = text
    return out


def stale(root: Path = REPO) -> list[Path]:
    """Generated files that are missing or differ, and stray dashboards nothing generates."""
    wanted = render()
    found = [
        p
        for p, text in wanted.items()
        if not (root / p).is_file() or (root / p).read_text() != text
    ]
    for folder in ("dashboards", "charts/ragline/files/dashboards"):
        for p in sorted((root / folder).glob("*.json")):
            rel = p.relative_to(root)
            if rel not in wanted:
                found.append(rel)
    return found


def write(root: Path = REPO) -> list[Path]:
    written = []
    for rel, text in render().items():
        path = root / rel
        if path.is_file() and path.read_text() == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(rel)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the generated files")
    mode.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    parser.add_argument("--root", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        for rel in write(args.root):
            print(f"wrote {rel}")
        return 0
    bad = stale(args.root)
    for rel in bad:
        print(f"stale: {rel}", file=sys.stderr)
    if bad:
        print(f"run: {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
