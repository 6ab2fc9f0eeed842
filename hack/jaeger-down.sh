#!/usr/bin/env bash
# Stops the Jaeger started by hack/jaeger-up.sh (its traces live in memory and
# are gone with it).
#
#   hack/jaeger-down.sh [--purge]    --purge also removes the state dir
#
# Environment: RAGLINE_JAEGER_DIR (as jaeger-up.sh), RAGLINE_STOP_TIMEOUT (20).
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${RAGLINE_CACHE:-$HOME/.cache/ragline}
STATE_DIR=${RAGLINE_JAEGER_DIR:-$CACHE_DIR/jaeger}
STOP_TIMEOUT=${RAGLINE_STOP_TIMEOUT:-20}

# shellcheck source=hack/lib.sh
source "$HACK_DIR/lib.sh"

case ${1:-} in
  "" | --purge) ;;
  *) die "usage: $0 [--purge]" ;;
esac

if [[ -d $STATE_DIR ]]; then
  stop_daemon jaeger "$STATE_DIR" "$STOP_TIMEOUT"
else
  say "no jaeger state in $STATE_DIR"
fi
if [[ ${1:-} == --purge ]]; then
  rm -rf "$STATE_DIR"
  say "removed $STATE_DIR"
fi
