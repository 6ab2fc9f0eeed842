#!/usr/bin/env bash
# Stops the control plane started by hack/cluster-up.sh.
#
#   hack/cluster-down.sh [--wipe|--purge]
#     --wipe   also delete etcd's data (next cluster-up starts empty; same PKI/token)
#     --purge  delete the whole state dir (data, PKI, kubeconfig, logs)
#
# Environment: RAGLINE_CLUSTER_DIR (as cluster-up.sh), RAGLINE_STOP_TIMEOUT
# (seconds to wait after SIGTERM before SIGKILL, default 20).
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${RAGLINE_CACHE:-$HOME/.cache/ragline}
STATE_DIR=${RAGLINE_CLUSTER_DIR:-$CACHE_DIR/cluster}
STOP_TIMEOUT=${RAGLINE_STOP_TIMEOUT:-20}

# shellcheck source=hack/lib.sh
source "$HACK_DIR/lib.sh"

mode=keep
case ${1:-} in
  "") ;;
  --wipe) mode=wipe ;;
  --purge) mode=purge ;;
  *) die "usage: $0 [--wipe|--purge]" ;;
esac

if [[ -d $STATE_DIR ]]; then
  # kube-apiserver first: stopped after etcd, it spends ~30 s retrying etcd.
  stop_daemon kube-apiserver "$STATE_DIR" "$STOP_TIMEOUT"
  stop_daemon etcd "$STATE_DIR" "$STOP_TIMEOUT"
else
  say "no cluster state in $STATE_DIR"
fi

case $mode in
  wipe) rm -rf "$STATE_DIR/etcd"; say "wiped $STATE_DIR/etcd" ;;
  purge) rm -rf "$STATE_DIR"; say "removed $STATE_DIR" ;;
esac
