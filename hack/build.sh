#!/usr/bin/env bash
# Builds the pinned local-tooling binaries (etcd, kube-apiserver, helm, jaeger)
# from the Go module proxy with this machine's Go toolchain.
#
#   hack/build.sh [etcd|kube-apiserver|helm|jaeger|all]...   (default: all)
#
# Binaries are cached outside the repo, in ${RAGLINE_CACHE:-~/.cache/ragline}/bin,
# as NAME-VERSION plus a stable NAME symlink. A binary that already exists is
# not rebuilt, so callers (cluster-up.sh, make tools, CI) can run this every time.
# stdout carries only the binary paths, one per line; progress goes to stderr.
set -euo pipefail

# Pinned versions. The go.mod files under hack/ pin the same versions; the
# check in build_module() refuses to build if the two drift apart.
readonly KUBE_VERSION=v1.37.2
readonly ETCD_VERSION=v3.6.16
readonly HELM_VERSION=v3.22.0
readonly JAEGER_VERSION=v1.76.0

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${RAGLINE_CACHE:-$HOME/.cache/ragline}
BIN_DIR=$CACHE_DIR/bin
BUILD_LOG=$CACHE_DIR/build.log

# Keep every Go artefact under the cache dir: nothing lands in the repo or the
# user's own GOPATH, and a warm cache makes rebuilds link-only.
export GOPATH=$CACHE_DIR/go
export GOMODCACHE=$CACHE_DIR/go/pkg/mod
export GOCACHE=$CACHE_DIR/go-build
export CGO_ENABLED=0
# The hack modules live inside the repo's git tree; VCS stamping would make the
# binary depend on the repo's state (and fails on a repo without commits).
export GOFLAGS=-buildvcs=false

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Builds one binary unless BIN_DIR/NAME-VERSION exists; $3.. is the command
# that writes the binary to the path in $OUT. Builds go to a temp file first so
# an interrupted build never leaves a half-written binary that would be skipped.
ensure() {
  local name=$1 version=$2; shift 2
  local target=$BIN_DIR/$name-$version
  if [[ ! -x $target ]]; then
    log "building $name $version (cold builds take minutes on 2 cores)"
    local start=$SECONDS
    OUT=$target.tmp.$$
    rm -f "$OUT"
    if ! "$@"; then
      rm -f "$OUT"
      die "building $name $version failed"
    fi
    mv -f "$OUT" "$target"
    local took=$((SECONDS - start))
    printf '%s %s %s %ss go=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$version" \
      "$took" "$(go env GOVERSION)" >>"$BUILD_LOG"
    log "built $name $version in ${took}s"
  fi
  ln -sfn "$name-$version" "$BIN_DIR/$name"
  printf '%s\n' "$target"
}

# go build of PKG inside one of hack/'s own modules (go.mod + go.sum committed).
build_module() {
  local dir=$1 pin=$2 ldflags=$3 pkg=$4
  # A drifted pin would cache a binary under the wrong version name.
  grep -qE "^[[:space:]]*(require[[:space:]]+)?${pin//./\\.}( |$)" "$HACK_DIR/$dir/go.mod" \
    || die "hack/$dir/go.mod does not pin '$pin'; update it or the version in build.sh"
  (cd "$HACK_DIR/$dir" && go build -trimpath -ldflags "$ldflags" -o "$OUT" "$pkg")
}

build_etcd() {
  build_module etcd "go.etcd.io/etcd/server/v3 $ETCD_VERSION" "-s -w" .
}

build_kube_apiserver() {
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  # Without these the server reports v0.0.0-master+$Format:%H$, which kubectl
  # cannot parse and helm would use as .Capabilities.KubeVersion.
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit="
  done
  build_module kube-apiserver "k8s.io/kubernetes $KUBE_VERSION" "$ldflags" .
}

build_helm() {
  # Helm's own Makefile stamps its version and the default Kubernetes version
  # that `helm template` assumes (.Capabilities.KubeVersion, else v1.20).
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1"
  ldflags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1"
  ldflags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
  local gobin
  gobin=$(mktemp -d "$BIN_DIR/.helm.XXXXXX")
  # `go install pkg@version` resolves helm's own go.mod; no module of ours needed.
  # Run from the cache dir so no surrounding go.mod/go.work is consulted.
  if (cd "$CACHE_DIR" && GOBIN=$gobin go install -trimpath -ldflags "$ldflags" \
        "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"); then
    mv -f "$gobin/helm" "$OUT"
    rmdir "$gobin"
  else
    rm -rf "$gobin"
    return 1
  fi
}

build_jaeger() {
  local ldflags="-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$JAEGER_VERSION"
  build_module jaeger "github.com/jaegertracing/jaeger $JAEGER_VERSION" "$ldflags" \
    github.com/jaegertracing/jaeger/cmd/jaeger
}

main() {
  command -v go >/dev/null || die "go is not on PATH"
  local targets=("$@")
  [[ ${#targets[@]} -gt 0 ]] || targets=(all)
  if [[ " ${targets[*]} " == *" all "* ]]; then
    targets=(etcd kube-apiserver helm jaeger)
  fi
  mkdir -p "$BIN_DIR"
  # Concurrent callers (parallel test workers running cluster-up.sh) must not
  # build the same binary twice at once; flock serialises them.
  if command -v flock >/dev/null; then
    exec 9>"$CACHE_DIR/build.lock"
    flock 9
  fi
  local t
  for t in "${targets[@]}"; do
    case $t in
      etcd) ensure etcd "$ETCD_VERSION" build_etcd ;;
      kube-apiserver) ensure kube-apiserver "$KUBE_VERSION" build_kube_apiserver ;;
      helm) ensure helm "$HELM_VERSION" build_helm ;;
      jaeger) ensure jaeger "$JAEGER_VERSION" build_jaeger ;;
      *) die "unknown target '$t' (want etcd, kube-apiserver, helm, jaeger or all)" ;;
    esac
  done
}

main "$@"
