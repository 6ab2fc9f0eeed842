#!/usr/bin/env bash
# Installs Debian's `prometheus` package (prometheus 2.42 + promtool) for the dashboard and
# alert-rule tests, only when `prometheus` or `promtool` is missing. Idempotent.
#
# The package's maintainer scripts would start a system-wide Prometheus service (on
# 0.0.0.0:9090, as user `prometheus`). The tests start their own on 127.0.0.1, so this
# script forbids service starts during the install (policy-rc.d exit 101, the Debian
# convention) and afterwards stops and disables the service if anything started it anyway.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "install-prometheus: need root (or sudo) to apt-get install prometheus" >&2
        exit 1
    }
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# `apt-get update` once, and only when the package lists do not know the package yet.
if ! apt-cache policy prometheus 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    "${SUDO[@]}" apt-get update -qq
fi

POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary: hack/install-prometheus.sh forbids service starts\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap cleanup EXIT

"${SUDO[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# Nothing of the package may keep running or start at boot.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    "${SUDO[@]}" systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/prometheus ]; then
    "${SUDO[@]}" /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null 2>&1; then
        "${SUDO[@]}" update-rc.d prometheus disable >/dev/null 2>&1 || true
    fi
fi
# A daemon the package started runs as its system user; ours never do.
if pids=$(pgrep -u prometheus -x prometheus 2>/dev/null); then
    echo "install-prometheus: stopping the package's prometheus ($pids)" >&2
    # shellcheck disable=SC2086
    "${SUDO[@]}" kill $pids || true
fi

command -v prometheus >/dev/null && command -v promtool >/dev/null
echo "install-prometheus: $(prometheus --version 2>&1 | head -n1)"
