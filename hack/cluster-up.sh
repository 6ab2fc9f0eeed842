#!/usr/bin/env bash
# Starts a local Kubernetes control plane (etcd + kube-apiserver, no kubelet,
# no container runtime) for tests/cluster and for trying the operator by hand.
#
# Everything listens on 127.0.0.1 only. State (PKI, etcd data, pid files, logs,
# kubeconfig) lives in RAGLINE_CLUSTER_DIR. Idempotent: if the control plane is
# already up and ready it only prints. The last line of output is always the
# kubeconfig path, so callers can do KUBECONFIG=$(hack/cluster-up.sh | tail -n1).
#
# Environment:
#   RAGLINE_CLUSTER_DIR      state dir          (default ~/.cache/ragline/cluster)
#   RAGLINE_ETCD_PORT        etcd client port   (default 23790)
#   RAGLINE_ETCD_PEER_PORT   etcd peer port     (default 23800)
#   RAGLINE_APISERVER_PORT   kube-apiserver     (default 26443)
#   RAGLINE_CLUSTER_TIMEOUT  readiness wait, s  (default 60)
#   RAGLINE_CACHE            binary cache, see hack/build.sh
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${RAGLINE_CACHE:-$HOME/.cache/ragline}
STATE_DIR=${RAGLINE_CLUSTER_DIR:-$CACHE_DIR/cluster}
ETCD_PORT=${RAGLINE_ETCD_PORT:-23790}
ETCD_PEER_PORT=${RAGLINE_ETCD_PEER_PORT:-23800}
APISERVER_PORT=${RAGLINE_APISERVER_PORT:-26443}
TIMEOUT=${RAGLINE_CLUSTER_TIMEOUT:-60}

# shellcheck source=hack/lib.sh
source "$HACK_DIR/lib.sh"

# The state dir holds keys, the admin token and a kubeconfig: keep it private.
umask 077

PKI=$STATE_DIR/pki
KUBECONFIG_PATH=$STATE_DIR/kubeconfig
ETCD_URL=http://127.0.0.1:$ETCD_PORT
APISERVER_URL=https://127.0.0.1:$APISERVER_PORT

# One-time PKI: a CA, a serving cert for 127.0.0.1/localhost, the service-account
# signing pair and an admin bearer token. Kept across restarts so an existing
# kubeconfig stays valid; cluster-down.sh --purge removes it.
make_pki() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -s $PKI/ca.crt ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=ragline-local-ca" 2>/dev/null
    rm -f "$PKI/apiserver.crt"   # a new CA invalidates the old serving cert
  fi
  if [[ ! -s $PKI/apiserver.crt ]]; then
    openssl req -newkey rsa:2048 -nodes -sha256 \
      -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" -subj "/CN=kube-apiserver" 2>/dev/null
    printf '%s\n' \
      "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc" \
      >"$PKI/apiserver.ext"
    openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
      -CAcreateserial -days 3650 -sha256 -extfile "$PKI/apiserver.ext" \
      -out "$PKI/apiserver.crt" 2>/dev/null
    rm -f "$PKI/apiserver.csr" "$PKI/apiserver.ext"
  fi
  if [[ ! -s $PKI/sa.key ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  if [[ ! -s $PKI/tokens.csv ]]; then
    # token,user,uid,"groups": system:masters bypasses RBAC entirely.
    printf '%s,ragline-admin,ragline-admin,"system:masters"\n' "$(openssl rand -hex 32)" \
      >"$PKI/tokens.csv"
  fi
  chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
}

# Rewritten on every run: the port may have changed since the PKI was made.
write_kubeconfig() {
  local token ca
  token=$(cut -d, -f1 "$PKI/tokens.csv")
  ca=$(base64 -w0 <"$PKI/ca.crt")
  cat >"$KUBECONFIG_PATH.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ragline-local
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $ca
users:
- name: ragline-admin
  user:
    token: $token
contexts:
- name: ragline-local
  context:
    cluster: ragline-local
    user: ragline-admin
current-context: ragline-local
EOF
  mv -f "$KUBECONFIG_PATH.tmp" "$KUBECONFIG_PATH"
}

etcd_healthy() {
  curl -fsS --max-time 2 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'
}

apiserver_ready() {
  local token
  token=$(cut -d, -f1 "$PKI/tokens.csv")
  [[ $(curl -sS --max-time 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $token" \
        "$APISERVER_URL/readyz" 2>/dev/null) == ok ]]
}

start_etcd() {
  local bin=$1
  mkdir -p "$STATE_DIR/etcd"
  chmod 700 "$STATE_DIR/etcd"
  # Client, peer and metrics all on loopback: etcd serves /metrics on the client
  # URL and opens no other listener unless --listen-metrics-urls is given.
  start_daemon etcd "$STATE_DIR" "$bin" \
    --name=ragline \
    --data-dir="$STATE_DIR/etcd" \
    --listen-client-urls="$ETCD_URL" \
    --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="ragline=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state=new
  wait_for etcd "$TIMEOUT" etcd_healthy etcd "$STATE_DIR"
}

start_apiserver() {
  local bin=$1
  # 1.37 refuses a loopback --advertise-address unless the endpoint reconciler
  # is off; with no kubelet there is nothing for it to reconcile anyway.
  # --cert-dir keeps it from ever writing under /var/run/kubernetes.
  # ServiceAccount admission rejects every pod in a namespace whose "default"
  # ServiceAccount does not exist, and without kube-controller-manager nothing
  # creates those; pods never run here anyway, so skip that check.
  start_daemon kube-apiserver "$STATE_DIR" "$bin" \
    --etcd-servers="$ETCD_URL" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$APISERVER_PORT" \
    --endpoint-reconciler-type=none \
    --cert-dir="$PKI" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --token-auth-file="$PKI/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --disable-admission-plugins=ServiceAccount \
    --allow-privileged=true \
    --profiling=false
  wait_for "kube-apiserver /readyz" "$TIMEOUT" apiserver_ready kube-apiserver "$STATE_DIR"
}

main() {
  local bins etcd_bin apiserver_bin
  bins=$("$HACK_DIR/build.sh" etcd kube-apiserver)
  etcd_bin=$(sed -n 1p <<<"$bins")
  apiserver_bin=$(sed -n 2p <<<"$bins")

  mkdir -p "$STATE_DIR"
  # Parallel callers (test workers) must not race to start the same daemons.
  exec 8>"$STATE_DIR/.lock"
  flock 8
  make_pki
  write_kubeconfig

  # Check every port we are about to bind before starting anything, so a
  # conflict does not leave a half-started control plane behind.
  local etcd_up=false api_up=false
  daemon_running etcd "$STATE_DIR" && etcd_up=true
  daemon_running kube-apiserver "$STATE_DIR" && api_up=true
  if ! $etcd_up; then
    require_port_free "$ETCD_PORT" "etcd (RAGLINE_ETCD_PORT)"
    require_port_free "$ETCD_PEER_PORT" "etcd peer (RAGLINE_ETCD_PEER_PORT)"
  fi
  $api_up || require_port_free "$APISERVER_PORT" "kube-apiserver (RAGLINE_APISERVER_PORT)"

  # A daemon already running (maybe still starting) is waited for, not restarted.
  if $etcd_up; then
    wait_for etcd "$TIMEOUT" etcd_healthy etcd "$STATE_DIR"
    say "etcd already running (pid $(cat "$STATE_DIR/etcd.pid")) on $ETCD_URL"
  else
    start_etcd "$etcd_bin"
    say "etcd started (pid $(cat "$STATE_DIR/etcd.pid")) on $ETCD_URL"
  fi

  if $api_up; then
    wait_for "kube-apiserver /readyz" "$TIMEOUT" apiserver_ready kube-apiserver "$STATE_DIR"
    say "kube-apiserver already running (pid $(cat "$STATE_DIR/kube-apiserver.pid")) on $APISERVER_URL"
  else
    start_apiserver "$apiserver_bin"
    say "kube-apiserver ready (pid $(cat "$STATE_DIR/kube-apiserver.pid")) on $APISERVER_URL"
  fi

  say "logs: $STATE_DIR/{etcd,kube-apiserver}.log"
  printf '%s\n' "$KUBECONFIG_PATH"
}

main "$@"
