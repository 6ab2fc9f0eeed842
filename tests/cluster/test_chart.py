"""The Helm chart (charts/ragline): lint, schema, rendering, and the real kube-apiserver.

`helm template` renders with the pinned helm from hack/build.sh; the output is checked
as parsed YAML (secure pods, least-privilege RBAC, wiring of the API and the operator),
then applied with the real kubectl: dry-run on the server for every option set, and for
real once, so the operator can run under the chart's own ServiceAccount and RBAC.
"""

from __future__ import annotations

import base64
import filecmp
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragapi.embedded import EmbeddedStack
from tests.cluster.conftest import Cluster

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "ragline"
RELEASE = "ragline"
NS = "ragline-chart"
API = "ragline-api"
OPERATOR = "ragline-operator"
# The one value the chart cannot default: where Postgres and Redis are.
REQUIRED = ("--set", "secrets.existingSecret=ragline-db")
CREATED_SECRET = (
    "--set",
    "secrets.create=true",
    "--set",
    "secrets.databaseUrl=postgresql://ragline:s3cret@127.0.0.1:1/ragline",
    "--set",
    "secrets.redisUrl=redis://127.0.0.1:1/0",
)
# Everything optional switched on, except the kinds whose CRDs a bare cluster lacks.
EVERYTHING = (
    *CREATED_SECRET,
    "--set",
    "api.autoscaling.enabled=true",
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "otel.enabled=true",
    "--set",
    "otel.endpoint=http://tempo-distributor.monitoring:4317",
    "--set",
    "providerSecrets={openai,groq.keys}",
    "--set",
    "operator.buildServiceAccount=ragline-build",
    "--set-json",
    'otel.resourceAttributes={"deployment.environment":"test"}',
)
MONITORING = ("--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true")

Doc = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> str:
    """The pinned helm, built by hack/build.sh (cached; a cold build takes about 2 min)."""
    out = subprocess.run(
        [str(REPO / "hack" / "build.sh"), "helm"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)


def template(helm: str, *values: str, namespace: str = NS, crds: bool = False) -> str:
    extra = ["--include-crds"] if crds else []
    out = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", namespace, *extra, *values)
    assert out.returncode == 0, out.stderr
    return out.stdout


def render(helm: str, *values: str, namespace: str = NS) -> list[Doc]:
    return [d for d in yaml.safe_load_all(template(helm, *values, namespace=namespace)) if d]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def kinds(docs: list[Doc]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def rbac_rules(docs: list[Doc]) -> list[tuple[Doc, Doc]]:
    return [(d, r) for d in docs if d["kind"] in ("Role", "ClusterRole") for r in d["rules"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- lint and schema


@pytest.mark.parametrize("values", [REQUIRED, EVERYTHING + MONITORING], ids=["required", "all"])
def test_lint_passes_without_warnings(helm: str, values: tuple[str, ...]) -> None:
    out = run_helm(helm, "lint", "--strict", str(CHART), *values)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("--set", "api.replicasss=2"), "additional properties 'replicasss' not allowed"),
        (("--set", "api.replicas=two"), "got string, want integer"),
        (("--set", "operator.clusterWide=yes"), "got string, want boolean"),
        (("--set", "logLevel=LOUD"), "/logLevel"),
        (("--set", "api.service.type=External"), "/api/service/type"),
        (("--set", "operator.watchNamespaces={Not_A_Namespace}"), "/operator/watchNamespaces"),
        (("--set", "otel.samplingRatio=2"), "/otel/samplingRatio"),
        (("--set", "unknownTopLevel=1"), "additional properties 'unknownTopLevel' not allowed"),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "wrong-bool",
        "enum",
        "service-type",
        "namespace",
        "ratio",
        "unknown-top-level",
    ],
)
def test_schema_rejects_bad_values(helm: str, values: tuple[str, ...], message: str) -> None:
    out = run_helm(helm, "template", RELEASE, str(CHART), *REQUIRED, *values)
    assert out.returncode != 0, out.stdout
    assert "values don't meet the specifications of the schema" in out.stderr, out.stderr
    assert message in out.stderr, out.stderr


def test_every_value_is_documented() -> None:
    """helm-docs style: every value has a `# --` comment above it (or above the mapping it
    belongs to, e.g. `resources`); plain parent mappings need none."""
    key = re.compile(r"^(\s*)([A-Za-z0-9_.-]+):(.*)$")
    lines = (CHART / "values.yaml").read_text().splitlines()

    def doc_comment_above(n: int) -> bool:
        n -= 1
        while n >= 0 and lines[n].lstrip().startswith("#"):
            if lines[n].lstrip().startswith("# --"):
                return True
            n -= 1
        return False

    def is_parent(n: int, indent: int) -> bool:
        for nxt in lines[n + 1 :]:
            if nxt.strip() and not nxt.lstrip().startswith("#"):
                m = key.match(nxt)
                return bool(m) and len(m[1]) > indent
        return False

    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    undocumented = []
    for n, line in enumerate(lines):
        m = key.match(line)
        if not m:
            continue
        indent = len(m[1])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        documented = doc_comment_above(n)
        inherited = any(d for _, d in stack)
        parent = m[3].strip() == "" and is_parent(n, indent)
        if not (documented or inherited or parent):
            undocumented.append(".".join([*(k for k in _path(lines, n, key))]))
        stack.append((indent, documented))
    assert not undocumented, f"values without a `# --` comment: {undocumented}"


def _path(lines: list[str], n: int, key: re.Pattern[str]) -> list[str]:
    """The dotted path of the key on line n, from the indentation above it."""
    m = key.match(lines[n])
    assert m
    path, indent = [m[2]], len(m[1])
    for above in reversed(lines[:n]):
        a = key.match(above)
        if a and len(a[1]) < indent:
            path.insert(0, a[2])
            indent = len(a[1])
    return path


# ---------------------------------------------------------------- rendering


def test_secret_is_required_with_a_clear_message(helm: str) -> None:
    out = run_helm(helm, "template", RELEASE, str(CHART))
    assert out.returncode != 0
    assert "set secrets.existingSecret to a Secret with keys databaseUrl and redisUrl" in out.stderr
    both = run_helm(helm, "template", RELEASE, str(CHART), *REQUIRED, *CREATED_SECRET)
    assert both.returncode != 0 and "not both" in both.stderr
    half = run_helm(helm, "template", RELEASE, str(CHART), "--set", "secrets.create=true")
    assert half.returncode != 0 and "secrets.databaseUrl is required" in half.stderr


def test_default_render(helm: str) -> None:
    docs = render(helm, *REQUIRED)
    assert kinds(docs) == sorted(
        [
            "Deployment",
            "Deployment",
            "Service",
            "Service",
            "ServiceAccount",
            "ServiceAccount",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "ClusterRole",
            "ClusterRoleBinding",
        ]
        + ["ConfigMap"] * len(list((CHART / "files" / "dashboards").glob("*.json")))
    )
    for d in docs:
        labels = d["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ragline"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert "helm.sh/chart" in labels
    dep = one(docs, "Deployment", API)
    assert dep["spec"]["replicas"] == 2
    # Each Service selects exactly its own pods, by the Deployment's selector.
    for svc_name, dep_name in ((API, API), (f"{OPERATOR}-metrics", OPERATOR)):
        selector = one(docs, "Service", svc_name)["spec"]["selector"]
        assert selector == one(docs, "Deployment", dep_name)["spec"]["selector"]["matchLabels"]
    assert one(docs, "PodDisruptionBudget", API)["spec"]["minAvailable"] == 1


@pytest.mark.parametrize("component", [API, OPERATOR])
def test_pods_are_restricted(helm: str, component: str) -> None:
    for values in (REQUIRED, EVERYTHING):
        pod = one(render(helm, *values), "Deployment", component)["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True
        assert psc["runAsUser"] == 10001 and psc["runAsGroup"] == 10001
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc.get("privileged", False) is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "memory" in c["resources"]["limits"] and "cpu" in c["resources"]["requests"]
            # A read-only root still needs a writable /tmp.
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1
            (vol,) = [v for v in pod["volumes"] if v["name"] == tmp[0]["name"]]
            assert "emptyDir" in vol
        assert pod["automountServiceAccountToken"] is (component == OPERATOR)


def test_api_deployment_wiring(helm: str) -> None:
    docs = render(helm, *EVERYTHING)
    dep = one(docs, "Deployment", API)
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"] == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = env_of(c)
    assert env["RAGLINE_ENV"]["value"] == "production"
    assert env["RAGLINE_MANAGE_INDEXES"]["value"] == "false"
    assert env["RAGLINE_SECRETS_DIR"]["value"] == "/etc/ragline/secrets"
    for var, key in (("RAGLINE_DATABASE_URL", "databaseUrl"), ("RAGLINE_REDIS_URL", "redisUrl")):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "ragline", "key": key}
    secret = one(docs, "Secret", "ragline")
    assert set(secret["stringData"]) == {"databaseUrl", "redisUrl"}
    # The routing file lives in the optional ConfigMap volume the operator fills later.
    routing = Path(env["RAGLINE_ROUTING_FILE"]["value"])
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    rvol = volumes[mounts[str(routing.parent)]["name"]]
    assert rvol["configMap"] == {"name": "ragline-routing", "optional": True}
    assert routing.name == "routing.yaml"
    # Provider Secrets at <dir>/<secret name>, as ragapi.secrets reads them.
    for name in ("openai", "groq.keys"):
        m = mounts[f"/etc/ragline/secrets/{name}"]
        assert m["readOnly"] is True
        assert volumes[m["name"]]["secret"]["secretName"] == name
    # OTLP tracing by the standard variables.
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://tempo-distributor.monitoring:4317"
    assert env["OTEL_SERVICE_NAME"]["value"] == "ragline-api"
    assert "deployment.environment=test" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
    # On by default, with the Tempo example; `otel.enabled=false` exports nothing.
    default_env = env_of(
        one(render(helm, *REQUIRED), "Deployment", API)["spec"]["template"]["spec"]["containers"][0]
    )
    assert (
        default_env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"]
        == "http://tempo-distributor.monitoring:4317"
    )
    assert not any(
        k.startswith("OTEL_")
        for k in env_of(
            one(render(helm, *REQUIRED, "--set", "otel.enabled=false"), "Deployment", API)["spec"][
                "template"
            ]["spec"]["containers"][0]
        )
    )
    # Autoscaling: the HPA owns the replica count.
    assert "replicas" not in dep["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler", API)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": API,
    }
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    # Spread over zones and nodes, selecting this Deployment's pods.
    tsc = pod["topologySpreadConstraints"]
    assert {t["topologyKey"] for t in tsc} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    for t in tsc:
        assert t["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_secret_checksum_rolls_the_pods(helm: str) -> None:
    def checksum(*values: str) -> str:
        dep = one(render(helm, *values), "Deployment", API)
        return str(dep["spec"]["template"]["metadata"]["annotations"]["checksum/secret"])

    first = checksum(*CREATED_SECRET)
    assert first == checksum(*CREATED_SECRET)
    assert first != checksum(*CREATED_SECRET, "--set", "secrets.redisUrl=redis://other:6379/0")
    existing = one(render(helm, *REQUIRED), "Deployment", API)
    assert "checksum/secret" not in existing["spec"]["template"]["metadata"]["annotations"]


def test_single_replica_gets_no_pdb(helm: str) -> None:
    docs = render(helm, *REQUIRED, "--set", "api.replicas=1")
    assert "PodDisruptionBudget" not in kinds(docs)
    off = render(helm, *REQUIRED, "--set", "api.pdb.enabled=false")
    assert "PodDisruptionBudget" not in kinds(off)


def test_operator_deployment(helm: str) -> None:
    docs = render(helm, *EVERYTHING)
    dep = one(docs, "Deployment", OPERATOR)
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["args"][0] == "operator"
    assert f"--namespace={NS}" in c["args"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"metrics": 9090, "health": 8081}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    env = env_of(c)
    assert env["RAGLINE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "ragline"
    assert env["RAGLINE_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "ragline"
    assert env["RAGLINE_DATABASE_SECRET_NAME"]["value"] == "ragline"
    assert env["RAGLINE_IMAGE"]["value"] == "ragline:0.1.0"
    assert env["RAGLINE_BUILD_SERVICE_ACCOUNT"]["value"] == "ragline-build"
    assert env["OTEL_SERVICE_NAME"]["value"] == "ragline-operator"
    pinned = render(helm, *REQUIRED, "--set", "image.digest=sha256:" + "a" * 64)
    (pc,) = one(pinned, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"]
    assert pc["image"] == "ragline:0.1.0@sha256:" + "a" * 64 == env_of(pc)["RAGLINE_IMAGE"]["value"]


def test_network_policies(helm: str) -> None:
    docs = render(helm, *EVERYTHING)
    api = one(docs, "NetworkPolicy", API)["spec"]
    assert api["policyTypes"] == ["Ingress"]  # egress stays open
    default_from, scrape = api["ingress"]
    assert default_from["from"] == [{"podSelector": {}}]
    assert default_from["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert scrape["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }
    op = one(docs, "NetworkPolicy", OPERATOR)["spec"]
    assert op["ingress"][0]["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    custom = render(
        helm,
        *REQUIRED,
        "--set",
        "networkPolicy.enabled=true",
        "--set-json",
        'networkPolicy.from=[{"namespaceSelector":{"matchLabels":{"team":"web"}}}]',
    )
    ingress = one(custom, "NetworkPolicy", API)["spec"]["ingress"]
    assert ingress[0]["from"] == [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]


def test_monitoring_kinds_render(helm: str) -> None:
    group = {"name": "extra", "rules": [{"alert": "X", "expr": "vector(1) > 2"}]}
    docs = render(
        helm,
        *REQUIRED,
        *MONITORING,
        "--set-json",
        f"prometheusRule.additionalGroups=[{json.dumps(group)}]",
        "--set-json",
        'serviceMonitor.labels={"release":"kube-prometheus-stack"}',
    )
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 2
    for sm in monitors:
        assert sm["apiVersion"] == "monitoring.coreos.com/v1"
        assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        # Each monitor selects one Service and names a port that Service has.
        selected = [
            s
            for s in services.values()
            if sm["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, sm["metadata"]["name"]
        (endpoint,) = sm["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    rule = one(docs, "PrometheusRule", "ragline")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alert_files = sorted((CHART / "files" / "alerts").glob("*.yaml"))
    shipped = [g for f in alert_files for g in (yaml.safe_load(f.read_text()) or {})["groups"]]
    assert rule["spec"]["groups"] == [*shipped, group]


def test_dashboards_are_configmaps_for_the_grafana_sidecar(helm: str) -> None:
    files = sorted((CHART / "files" / "dashboards").glob("*.json"))
    docs = render(helm, *REQUIRED, "--set-json", 'dashboards.annotations={"grafana_folder":"R"}')
    maps = [d for d in docs if d["kind"] == "ConfigMap"]
    assert len(maps) == len(files)
    by_key = {k: (m, v) for m in maps for k, v in m["data"].items()}
    for f in files:
        m, content = by_key[f.name]
        assert m["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert m["metadata"]["annotations"] == {"grafana_folder": "R"}
        assert json.loads(content) == json.loads(f.read_text())
    off = render(helm, *REQUIRED, "--set", "dashboards.enabled=false")
    assert "ConfigMap" not in kinds(off)


# ---------------------------------------------------------------- RBAC


def test_operator_rbac_is_least_privilege(helm: str) -> None:
    for values in (REQUIRED, (*REQUIRED, "--set", "operator.clusterWide=true")):
        docs = render(helm, *values)
        rules = rbac_rules(docs)
        assert rules
        for role, rule in rules:
            where = f"{role['kind']}/{role['metadata']['name']}: {rule}"
            for field in ("verbs", "resources", "apiGroups"):
                assert "*" not in rule.get(field, []), where
            assert "escalate" not in rule["verbs"] and "bind" not in rule["verbs"], where
            assert "impersonate" not in rule["verbs"], where
            assert not any("kopfpeering" in r for r in rule["resources"]), where
            if "secrets" in rule["resources"]:
                assert set(rule["verbs"]) == {"get"}, where
            if {"customresourcedefinitions", "namespaces"} & set(rule["resources"]):
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, where
            if "configmaps" in rule["resources"] and set(rule["verbs"]) - {"create"}:
                assert rule["resourceNames"] == ["ragline-routing"], where
        # The API's ServiceAccount is bound to nothing.
        for b in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
            assert [s["name"] for s in b["subjects"]] == [OPERATOR]


def test_watch_namespaces_and_cluster_wide(helm: str) -> None:
    docs = render(helm, *REQUIRED, "--set", "operator.watchNamespaces={team-a,team-b}")
    roles = {d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"}
    assert roles == {"team-a", "team-b"}
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert {b["subjects"][0]["namespace"] for b in bindings} == {NS}
    (c,) = one(docs, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"]
    assert [a for a in c["args"] if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]

    wide = render(helm, *REQUIRED, "--set", "operator.clusterWide=true")
    assert "Role" not in kinds(wide) and "RoleBinding" not in kinds(wide)
    cluster_roles = {d["metadata"]["name"] for d in wide if d["kind"] == "ClusterRole"}
    assert cluster_roles == {f"{NS}-{OPERATOR}", f"{NS}-{OPERATOR}-discovery"}
    (c,) = one(wide, "Deployment", OPERATOR)["spec"]["template"]["spec"]["containers"]
    assert "--all-namespaces" in c["args"] and not any(
        a.startswith("--namespace") for a in c["args"]
    )


# ---------------------------------------------------------------- CRDs


def test_chart_crds_equal_the_source_crds() -> None:
    source = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    if not source:
        pytest.skip("crds/ has no CRDs yet")
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert chart == source, "charts/ragline/crds/ is out of date: copy crds/*.yaml into it"
    _, mismatch, errors = filecmp.cmpfiles(REPO / "crds", CHART / "crds", source, shallow=False)
    assert not mismatch and not errors, f"differ from crds/: {mismatch + errors}"


def test_chart_dashboards_equal_the_source_dashboards() -> None:
    source = sorted(p.name for p in (REPO / "dashboards").glob("*.json"))
    chart = sorted(p.name for p in (CHART / "files" / "dashboards").glob("*.json"))
    assert chart == source, "charts/ragline/files/dashboards/ is out of date with dashboards/"
    _, mismatch, errors = filecmp.cmpfiles(
        REPO / "dashboards", CHART / "files" / "dashboards", source, shallow=False
    )
    assert not mismatch and not errors, f"differ from dashboards/: {mismatch + errors}"


# ---------------------------------------------------------------- the real API server


@pytest.fixture(scope="module")
def k(cluster: Cluster) -> Cluster:
    for ns in (NS, "team-a", "team-b"):
        cluster.kubectl("create", "namespace", ns)
    return cluster


@pytest.mark.parametrize(
    "values",
    [
        REQUIRED,
        EVERYTHING,
        (*REQUIRED, "--set", "operator.watchNamespaces={team-a,team-b}"),
        (*REQUIRED, "--set", "operator.clusterWide=true"),
        (*REQUIRED, "--set", "operator.enabled=false"),
    ],
    ids=["defaults", "everything", "watch-namespaces", "cluster-wide", "api-only"],
)
def test_server_dry_run(helm: str, k: Cluster, values: tuple[str, ...]) -> None:
    manifest = template(helm, *values, crds=True)
    out = k.kubectl("apply", "--dry-run=server", "-f", "-", input=manifest)
    applied = [line for line in out.stdout.splitlines() if line.strip()]
    expected = [d for d in yaml.safe_load_all(manifest) if d]
    assert len(applied) == len(expected), out.stdout
    assert all("(server dry run)" in line for line in applied), out.stdout


# ---------------------------------------------------------------- the operator under its RBAC

OPERATOR_NS = "ragline-op"
WATCHED = (OPERATOR_NS, "ragline-team")


def _wait(what: str, check: Any, timeout: float, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} not seen in {timeout}s; operator log:\n{log.read_text()[-4000:]}"
            )
        time.sleep(0.5)


@pytest.fixture(scope="module")
def installed(
    helm: str,
    cluster: Cluster,
    crds_applied: tuple[str, ...],
    stack: EmbeddedStack,
    tmp_path_factory: pytest.TempPathFactory,
) -> list[Doc]:
    """The chart applied for real (no pods run here) with its Secret pointing at the
    embedded Postgres and Redis, the operator watching two namespaces; returns the
    rendered documents."""
    for ns in WATCHED:
        cluster.kubectl("create", "namespace", ns)
    # A values file, not --set: the URLs hold characters --set would parse.
    values = tmp_path_factory.mktemp("chart") / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "secrets": {
                    "create": True,
                    "databaseUrl": stack.postgres.url,
                    "redisUrl": stack.redis.url,
                },
                "operator": {"watchNamespaces": list(WATCHED)},
            }
        )
    )
    values.chmod(0o600)
    manifest = template(helm, "-f", str(values), namespace=OPERATOR_NS)
    cluster.kubectl("apply", "-f", "-", input=manifest)
    return [d for d in yaml.safe_load_all(manifest) if d]


def test_operator_permissions_as_the_server_sees_them(
    cluster: Cluster, installed: list[Doc]
) -> None:
    sa = f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR}"

    def can(verb: str, resource: str, ns: str | None = OPERATOR_NS) -> bool:
        where = ["-n", ns] if ns else []
        out = cluster.kubectl("auth", "can-i", verb, resource, "--as", sa, *where, check=False)
        return out.stdout.strip() == "yes"

    for ns in WATCHED:
        assert can("list", "ragindexes.ragline.dev", ns)
        assert can("patch", "inferencepools.ragline.dev/x", ns)
        assert can("patch", "providerbudgets.ragline.dev", ns) and can("watch", "ragindexes", ns)
        assert can("patch", "ragindexes.ragline.dev", ns)
        assert can("create", "jobs.batch", ns) and can("patch", "deployments.apps", ns)
        assert can("patch", "configmaps/ragline-routing", ns)
        assert not can("patch", "configmaps/other", ns)
        assert can("get", "secrets/dsn", ns)
        assert can("create", "events", ns) and can("create", "events.events.k8s.io", ns)
        for verb in ("list", "watch", "create", "patch", "update", "delete"):
            assert not can(verb, "secrets", ns), verb
        assert not can("delete", "ragindexes.ragline.dev", ns)
        assert not can("create", "pods", ns) and not can("create", "pods/exec", ns)
    assert can("list", "customresourcedefinitions.apiextensions.k8s.io", None)
    assert not can("patch", "customresourcedefinitions.apiextensions.k8s.io", None)
    assert can("watch", "namespaces", None) and not can("delete", "namespaces", None)
    assert not can("list", "ragindexes.ragline.dev", "default")
    assert not can("list", "kopfpeerings.kopf.dev", OPERATOR_NS)
    api_sa = f"system:serviceaccount:{OPERATOR_NS}:{API}"
    out = cluster.kubectl("auth", "can-i", "--list", "--as", api_sa, "-n", OPERATOR_NS)
    assert "ragline.dev" not in out.stdout and "secrets" not in out.stdout, out.stdout


@pytest.fixture
def operator_process(
    cluster: Cluster, installed: list[Doc], tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`ragline operator` as the chart's Deployment runs it (its args and plain env), but
    authenticated as the chart's ServiceAccount with a token from the TokenRequest API."""
    token = cluster.kubectl(
        "create", "token", OPERATOR, "-n", OPERATOR_NS, "--duration=1h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig = tmp_path / "operator.kubeconfig"
    admin["users"] = [{"name": "operator", "user": {"token": token}}]
    admin["contexts"][0]["context"]["user"] = "operator"
    kubeconfig.write_text(yaml.safe_dump(admin))
    kubeconfig.chmod(0o600)

    dep = one(installed, "Deployment", OPERATOR)
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    secret = one(installed, "Secret", "ragline")["stringData"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGLINE_", "KUBE"))}
    for e in c["env"]:
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            env[e["name"]] = secret[e["valueFrom"]["secretKeyRef"]["key"]]
    # Loopback ports instead of the pod's fixed ones.
    env.update(
        {
            "KUBECONFIG": str(kubeconfig),
            "RAGLINE_METRICS_PORT": str(free_port()),
            "RAGLINE_METRICS_ADDRESS": "127.0.0.1",
            "RAGLINE_LOG_JSON": "false",
        }
    )
    args = [*c["args"], f"--liveness-port={free_port()}", "--liveness-host=127.0.0.1"]
    ragline = str(Path(sys.executable).parent / "ragline")
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([ragline, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc, log
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_operator_runs_under_the_chart_rbac(
    cluster: Cluster,
    stack: EmbeddedStack,
    operator_process: tuple[subprocess.Popen[bytes], Path],
) -> None:
    """Reconciles in both watched namespaces with no request refused: routing ConfigMaps
    applied, status patched, a Secret read, an index-build Job applied, an Event posted."""
    proc, log = operator_process
    team = WATCHED[1]
    index_name = "chart-rbac-docs"
    pool = {
        "apiVersion": "ragline.dev/v1alpha1",
        "kind": "InferencePool",
        "metadata": {"name": "default"},
        "spec": {"purpose": "chat", "providers": [{"name": "fallback", "type": "extractive"}]},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "team-db"},
        "data": {"dsn": base64.b64encode(stack.postgres.url.encode()).decode()},
    }
    index = {
        "apiVersion": "ragline.dev/v1alpha1",
        "kind": "RagIndex",
        "metadata": {"name": index_name},
        "spec": {
            "database": {"secretRef": {"name": "team-db", "key": "dsn"}},
            "embedding": {"model": "all-MiniLM-L6-v2-int8", "dimensions": 384},
        },
    }
    for ns in WATCHED:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(pool))
    cluster.kubectl("apply", "-n", team, "-f", "-", input=yaml.safe_dump_all([secret, index]))

    def routing(ns: str) -> str:
        out = cluster.kubectl(
            "get",
            "configmap",
            "ragline-routing",
            "-n",
            ns,
            "--ignore-not-found",
            "-o",
            "jsonpath={.data.routing\\.yaml}",
        )
        return out.stdout

    for ns in WATCHED:
        _wait(
            f"routing ConfigMap in {ns}",
            lambda ns=ns: "kind: InferencePool" in routing(ns),
            60,
            log,
        )
    _wait("the RagIndex in the routing", lambda: index_name in routing(team), 60, log)

    def ready(kind: str, name: str, ns: str) -> bool:
        out = cluster.kubectl("get", kind, name, "-n", ns, "-o", "json")
        conds = json.loads(out.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    for ns in WATCHED:
        _wait(
            f"InferencePool Ready in {ns}",
            lambda ns=ns: ready("inferencepools", "default", ns),
            60,
            log,
        )

    # The index reads its DSN from the Secret, creates its table, then applies the Job
    # that builds its HNSW index (it never runs here) and says so in an Event.
    def build_job() -> list[Doc]:
        out = cluster.kubectl(
            "get", "jobs", "-n", team, "-l", f"ragline.dev/index={index_name}", "-o", "json"
        )
        jobs: list[Doc] = json.loads(out.stdout)["items"]
        return jobs

    (job,) = _wait("the index-build Job", build_job, 90, log)
    assert job["metadata"]["ownerReferences"][0]["name"] == index_name
    (c,) = job["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "ragline:0.1.0"  # the chart's image, by RAGLINE_IMAGE

    def events() -> str:
        out = cluster.kubectl(
            "get",
            "events",
            "-n",
            team,
            "--field-selector",
            f"involvedObject.name={index_name}",
            "-o",
            "json",
        )
        return " ".join(e.get("reason", "") for e in json.loads(out.stdout)["items"])

    _wait("the IndexBuildStarted Event", lambda: "IndexBuildStarted" in events(), 60, log)

    assert proc.poll() is None, log.read_text()[-4000:]
    text = log.read_text()
    assert not re.search(r"forbidden|status=403|'code': 403", text, re.IGNORECASE), text[-4000:]


# ---------------------------------------------------------------- helm install, upgrade, uninstall


def test_helm_install_upgrade_uninstall(helm: str, cluster: Cluster, tmp_path: Path) -> None:
    """Helm's own paths against the real API server: install (CRDs first, NOTES rendered),
    upgrade with changed values (no immutable field touched), uninstall."""
    ns = "ragline-helm"
    env = {
        **cluster.env,
        "KUBECONFIG": str(cluster.kubeconfig),
        "HELM_CACHE_HOME": str(tmp_path / "cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "config"),
        "HELM_DATA_HOME": str(tmp_path / "data"),
    }

    def helm_run(*args: str) -> str:
        out = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    installed = helm_run(
        "install", RELEASE, str(CHART), "--namespace", ns, "--create-namespace",
        *CREATED_SECRET, "--set", "providerSecrets={openai}",
    )  # fmt: skip
    assert "STATUS: deployed" in installed
    assert f"Service {API}:8080" in installed and f"watching {ns}" in installed
    assert "/etc/ragline/secrets/<name>" in installed and "WARNING" not in installed
    crds = cluster.kubectl("get", "crd", "-o", "name").stdout
    for name in ("ragindexes", "inferencepools", "providerbudgets"):
        assert f"{name}.ragline.dev" in crds

    before = cluster.kubectl("get", "deployment", API, "-n", ns, "-o", "json").stdout
    helm_run(
        "upgrade", RELEASE, str(CHART), "--namespace", ns, *CREATED_SECRET,
        "--set", "secrets.redisUrl=redis://redis.other:6379/1",
        "--set", "api.autoscaling.enabled=true", "--set", "operator.clusterWide=true",
    )  # fmt: skip
    after = json.loads(cluster.kubectl("get", "deployment", API, "-n", ns, "-o", "json").stdout)
    annotations = after["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["checksum/secret"]
        != json.loads(before)["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]
    )
    cluster.kubectl("get", "hpa", API, "-n", ns)
    cluster.kubectl("get", "clusterrole", f"{ns}-{OPERATOR}")

    helm_run("uninstall", RELEASE, "--namespace", ns, "--wait", "--timeout", "60s")
    left = cluster.kubectl(
        "get", "deployments,services,serviceaccounts,roles,rolebindings,secrets", "-n", ns,
        "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name",
    ).stdout  # fmt: skip
    assert left.strip() == "", left
    wide = cluster.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").stdout
    assert f"{ns}-{OPERATOR}" not in wide
    # Helm never deletes CRDs (that would delete every custom resource with them).
    assert "ragindexes.ragline.dev" in cluster.kubectl("get", "crd", "-o", "name").stdout
