# Local tooling targets; included from the top-level Makefile.
# Binaries are cached in $(RAGLINE_CACHE) (default ~/.cache/ragline), never in
# the repo; see the header of each hack/ script for its environment variables.

RAGLINE_HACK ?= $(CURDIR)/hack

.PHONY: tools cluster-up cluster-down jaeger-up jaeger-down

## tools: build etcd, kube-apiserver, helm and jaeger (cached; seconds when warm)
tools:
	$(RAGLINE_HACK)/build.sh all

## cluster-up: start etcd + kube-apiserver on 127.0.0.1; prints the kubeconfig path
cluster-up:
	$(RAGLINE_HACK)/cluster-up.sh

## cluster-down: stop the control plane (make cluster-down CLUSTER_DOWN_FLAGS=--wipe|--purge)
cluster-down:
	$(RAGLINE_HACK)/cluster-down.sh $(CLUSTER_DOWN_FLAGS)

## jaeger-up: start Jaeger (in-memory) with OTLP on 127.0.0.1:4317/4318
jaeger-up:
	$(RAGLINE_HACK)/jaeger-up.sh

## jaeger-down: stop Jaeger
jaeger-down:
	$(RAGLINE_HACK)/jaeger-down.sh
