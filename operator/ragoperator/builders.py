"""Pure builders: custom resource spec → Kubernetes manifests.

Every child has a deterministic name and an owner reference to its custom resource, so
a restarted operator finds what it made instead of duplicating it, and ``kubectl delete``
of the resource garbage-collects its children.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from ragapi.contract import API_VERSION, InferencePoolSpec, RagIndexSpec

ROUTING_CONFIGMAP = "ragline-routing"
ROUTING_KEY = "routing.yaml"
MANAGED_BY = "ragline-operator"
KIND_ORDER = ("InferencePool", "ProviderBudget", "RagIndex")


@dataclass(frozen=True)
class Owner:
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass(frozen=True)
class SecretRef:
    name: str
    key: str


def _labels(component: str, instance: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "ragline",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def _short_hash(data: Any, length: int = 8) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:length]


def _dns_name(*parts: str, limit: int = 63) -> str:
    """Join parts into a DNS-1123 label of at most ``limit`` characters; the last part
    (a hash) always survives truncation, so names stay unique."""
    head, tail = "-".join(parts[:-1]), parts[-1]
    room = limit - len(tail) - 1
    return f"{head[:room].rstrip('-')}-{tail}"


_RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def hnsw_params(spec: RagIndexSpec) -> dict[str, Any]:
    return {
        "m": spec.hnsw.m,
        "efConstruction": spec.hnsw.ef_construction,
        "distance": spec.distance.value,
    }


def index_build_job_name(index: str, spec: RagIndexSpec) -> str:
    return _dns_name("ragline-build", index, _short_hash(hnsw_params(spec)))


def index_build_job(
    index: str,
    namespace: str,
    spec: RagIndexSpec,
    *,
    owner: Owner,
    image: str,
    database: SecretRef,
    service_account: str | None = None,
) -> dict[str, Any]:
    """The Job that runs ``ragline index build <index>`` (CREATE INDEX CONCURRENTLY).

    Named after the HNSW parameters: one Job per parameter set, so a restart finds the
    running build and new parameters get a new Job beside the old index.
    """
    labels = {**_labels("index-build", index), "ragline.dev/index": index}
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": _RESTRICTED_POD,
        "containers": [
            {
                "name": "build",
                "image": image,
                "args": ["index", "build", index],
                "env": [
                    {
                        "name": "RAGLINE_DATABASE_URL",
                        "valueFrom": {"secretKeyRef": {"name": database.name, "key": database.key}},
                    },
                    {"name": "RAGLINE_LOG_JSON", "value": "true"},
                ],
                "resources": {
                    "requests": {"cpu": "500m", "memory": "1Gi"},
                    "limits": {"memory": "2Gi"},
                },
                "securityContext": _RESTRICTED_CONTAINER,
                # A writable /tmp on a read-only root filesystem.
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": index_build_job_name(index, spec),
            "namespace": namespace,
            "labels": labels,
            "annotations": {
                "ragline.dev/hnsw-params": json.dumps(hnsw_params(spec), sort_keys=True)
            },
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "backoffLimit": 3,
            "activeDeadlineSeconds": 6 * 3600,
            "ttlSecondsAfterFinished": 7 * 24 * 3600,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def pool_workload_name(pool: str) -> str:
    return _dns_name("ragline-pool", pool, _short_hash(pool, 4))


def pool_children(
    pool: str, namespace: str, spec: InferencePoolSpec, *, owner: Owner
) -> list[dict[str, Any]]:
    """Deployment + Service (+ HPA) + PDB for a self-hosted OpenAI-compatible server."""
    dep = spec.deployment
    if dep is None:
        return []
    name = pool_workload_name(pool)
    labels = {**_labels("inference", pool), "ragline.dev/pool": pool}
    selector = {"app.kubernetes.io/instance": pool, "app.kubernetes.io/component": "inference"}
    meta = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "ownerReferences": [owner.reference()],
    }
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [
                        {
                            "name": "server",
                            "image": dep.image,
                            "args": list(dep.args),
                            "ports": [{"name": "http", "containerPort": dep.port}],
                            "resources": dep.resources,
                            "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 10},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
    if dep.autoscaling is None:
        deployment["spec"]["replicas"] = dep.replicas  # with an HPA, the HPA owns replicas
    children: list[dict[str, Any]] = [
        deployment,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": selector,
                "ports": [{"name": "http", "port": dep.port, "targetPort": "http"}],
            },
        },
    ]
    min_replicas = dep.replicas
    if dep.autoscaling is not None:
        a = dep.autoscaling
        min_replicas = a.min_replicas
        hpa_spec: dict[str, Any] = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": max(1, a.min_replicas),
            "maxReplicas": a.max_replicas,
        }
        if a.target_cpu_utilization_percentage is not None:
            hpa_spec["metrics"] = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": a.target_cpu_utilization_percentage,
                        },
                    },
                }
            ]
        children.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": meta,
                "spec": hpa_spec,
            }
        )
    # One replica may always go during a drain, unless that is the only one serving.
    pdb_spec: dict[str, Any] = {"selector": {"matchLabels": selector}}
    if min_replicas > 1:
        pdb_spec["minAvailable"] = 1
    else:
        pdb_spec["maxUnavailable"] = 1
    children.append(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta,
            "spec": pdb_spec,
        }
    )
    return children


def routing_document(resources: list[dict[str, Any]]) -> str:
    """The routing file: the resources as a user would apply them (no status, no server
    metadata), in a stable order so an unchanged set renders byte-identical YAML."""
    cleaned = [
        {
            "apiVersion": API_VERSION,
            "kind": r["kind"],
            "metadata": {"name": r["metadata"]["name"]},
            "spec": r.get("spec") or {},
        }
        for r in resources
        if r.get("kind") in KIND_ORDER and not r.get("metadata", {}).get("deletionTimestamp")
    ]
    cleaned.sort(key=lambda r: (KIND_ORDER.index(r["kind"]), r["metadata"]["name"]))
    header = "# Rendered by ragline-operator from the namespace's Ragline resources.\n"
    if not cleaned:
        return header
    return header + yaml.safe_dump_all(cleaned, sort_keys=True, default_flow_style=False)


def routing_configmap(namespace: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ROUTING_CONFIGMAP,
            "namespace": namespace,
            "labels": _labels("routing", "ragline"),
        },
        "data": {ROUTING_KEY: routing_document(resources)},
    }
