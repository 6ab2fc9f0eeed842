"""The Grafana dashboards and Prometheus alert rules: generated from dashboards/generate.py,
copied into the chart, well formed, and checked by the real promtool (Debian's prometheus
package, installed by hack/install-prometheus.sh)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
CHART_FILES = REPO / "charts" / "ragline" / "files"
RULES = DASHBOARDS / "alerts" / "ragline.rules.yaml"
RULE_TESTS = sorted((DASHBOARDS / "alerts" / "tests").glob("*.yaml"))
WRITE = "python dashboards/generate.py --write"
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}


@cache
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ragline_dashboards", DASHBOARDS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:  # not a skip: the dev extras must provide it
        pytest.fail(f"{exc}: install the dev extras (pip install -e '.[dev]')")
    return module


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in d["panels"]:
        if p["type"] == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: run hack/install-prometheus.sh (Debian's prometheus "
            "package, which brings promtool)"
        )
    return found


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric, matchers) for every ragline_* vector selector of a PromQL expression;
    string literals (which may hold braces: route="/v1/indexes/{index}/query") are skipped."""
    found: list[tuple[str, str]] = []
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            end = i + 1
            while end < n and expr[end] != c:
                end += 2 if expr[end] == "\\" else 1
            i = end + 1
            continue
        m = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*").match(expr, i)
        if not m:
            i += 1
            continue
        name, i = m.group(0), m.end()
        if not name.startswith("ragline_"):
            continue
        j = i
        while j < n and expr[j] == " ":
            j += 1
        if j < n and expr[j] == "(":
            continue  # a function, not a metric
        matchers = ""
        if j < n and expr[j] == "{":
            k, quote = j + 1, ""
            while k < n:
                ch = expr[k]
                if quote:
                    if ch == "\\":
                        k += 1
                    elif ch == quote:
                        quote = ""
                elif ch in "\"'`":
                    quote = ch
                elif ch == "}":
                    break
                k += 1
            matchers, i = expr[j + 1 : k], k + 1
        found.append((name, matchers))
    return found


# ---------------------------------------------------------------------------- tests


def test_committed_files_are_what_the_generator_writes() -> None:
    gen = generator()
    for rel, text in gen.render().items():
        path = REPO / rel
        assert path.is_file(), f"{rel} is missing: run `{WRITE}`"
        assert path.read_text() == text, f"{rel} is stale: run `{WRITE}`"
    assert gen.stale() == [], f"stale or stray files: run `{WRITE}`"


def test_check_fails_on_stale_or_stray_files_and_names_the_command(tmp_path: Path) -> None:
    gen = generator()
    gen.write(tmp_path)
    assert gen.stale(tmp_path) == []
    (tmp_path / "dashboards" / "overview.json").write_text("{}\n")
    (tmp_path / "charts/ragline/files/dashboards/old.json").write_text("{}\n")
    out = subprocess.run(
        [sys.executable, str(DASHBOARDS / "generate.py"), "--check", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1
    assert "stale: dashboards/overview.json" in out.stderr
    assert "stale: charts/ragline/files/dashboards/old.json" in out.stderr
    assert WRITE in out.stderr


def test_chart_copies_are_identical() -> None:
    source = sorted(p.name for p in DASHBOARDS.glob("*.json"))
    chart = sorted(p.name for p in (CHART_FILES / "dashboards").glob("*.json"))
    assert source and chart == source, f"charts/ragline/files/dashboards/ differs: run `{WRITE}`"
    for name in source:
        assert (CHART_FILES / "dashboards" / name).read_bytes() == (
            DASHBOARDS / name
        ).read_bytes(), f"charts/ragline/files/dashboards/{name} differs: run `{WRITE}`"
    alerts = sorted(p.name for p in (CHART_FILES / "alerts").glob("*.yaml"))
    assert alerts == [RULES.name]
    assert (CHART_FILES / "alerts" / RULES.name).read_bytes() == RULES.read_bytes()


def test_the_dashboards_the_issue_asks_for() -> None:
    titles = {d["title"] for d in dashboards().values()}
    assert titles == {
        "Ragline / Overview",
        "Ragline / Retrieval",
        "Ragline / Providers & budgets",
        "Ragline / Ingestion",
        "Ragline / Operator",
    }
    uids = [d["uid"] for d in dashboards().values()]
    assert len(set(uids)) == len(uids)


def test_every_panel_queries_the_datasource_variable() -> None:
    for name, d in dashboards().items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        ds = variables.get("datasource")
        assert ds and ds["type"] == "datasource" and ds["query"] == "prometheus", name
        for v in variables.values():
            if v["type"] == "query":
                assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, v
        seen_ids, seen_titles = set(), set()
        for p in panels(d):
            where = f"{name}: panel {p.get('title')!r}"
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            assert p["targets"], f"{where} has no targets"
            for t in p["targets"]:
                assert t.get("expr", "").strip(), f"{where} has an empty query"
                assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
            refs = [t["refId"] for t in p["targets"]]
            assert len(set(refs)) == len(refs) and all(refs), where
            assert p["id"] not in seen_ids and p["title"] not in seen_titles, where
            seen_ids.add(p["id"])
            seen_titles.add(p["title"])


def test_template_variables_are_declared_used_and_filter_every_selector() -> None:
    for name, d in dashboards().items():
        declared = {v["name"] for v in d["templating"]["list"]}
        assert {"datasource", "namespace"} <= declared, name
        ns = next(v for v in d["templating"]["list"] if v["name"] == "namespace")
        assert re.fullmatch(r"label_values\(.*ragline_build_info.*, namespace\)", ns["query"])
        exprs = [t["expr"] for p in panels(d) for t in p["targets"]]
        used = {m for e in exprs for m in re.findall(r"\$\{?(\w+)", e)}
        assert used - BUILTIN_VARIABLES <= declared, f"{name}: undeclared {used - declared}"
        assert declared - {"datasource"} <= used, f"{name}: unused {declared - used}"
        for e in exprs:
            sels = selectors(e)
            assert sels, f"{name}: no ragline_* metric in {e}"
            for metric, matchers in sels:
                assert 'namespace=~"$namespace"' in matchers, f"{name}: {metric} in {e}"


def test_selector_scanner() -> None:
    e = (
        'sum by (le) (rate(ragline_x_bucket{namespace=~"$namespace",route="/a/{index}/q"}[5m]))'
        " / ragline_y + ragline_z {a='}'}"
    )
    assert selectors(e) == [
        ("ragline_x_bucket", 'namespace=~"$namespace",route="/a/{index}/q"'),
        ("ragline_y", ""),
        ("ragline_z", "a='}'"),
    ]
    assert selectors('label_values({__name__=~"ragline_a"}, index)') == []


def test_promtool_check_rules() -> None:
    for path in (RULES, CHART_FILES / "alerts" / RULES.name):
        out = subprocess.run(
            [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "SUCCESS" in out.stdout


def test_promtool_test_rules() -> None:
    assert RULE_TESTS, "no dashboards/alerts/tests/*.yaml"
    out = subprocess.run(
        [promtool(), "test", "rules", *map(str, RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS[0].parent,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_is_tested_firing_and_quiet() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert len(alerts) >= 11
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for t in case.get("alert_rule_test", []):
                (fired if t.get("exp_alerts") else quiet).add(t["alertname"])
    assert set(alerts) - fired == set(), "alerts never shown firing"
    assert set(alerts) - quiet == set(), "alerts never shown quiet"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert {"summary", "description", "dashboard"} <= set(rule["annotations"]), name
        assert rule["annotations"]["dashboard"] in {d["uid"] for d in dashboards().values()}
