# Ragline. `make demo` and `make test` do all their own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8080
DATA_DIR ?= .ragline-demo
PYTEST_ARGS ?=

.PHONY: help install demo serve test test-unit test-integration test-cluster lint format bench \
	crds operator clean

include hack/cluster.mk

help:
	@echo "make demo     start Postgres+Redis (embedded), ingest examples/corpus, serve on 127.0.0.1:$(PORT)"
	@echo "make test     install everything the tests need, lint, run unit + integration tests"
	@echo "make lint     ruff (lint + format check) and mypy on api/ and operator/"
	@echo "make bench    retrieval, API and ingestion benchmarks (tables with ratios)"
	@echo "make cluster-up / cluster-down   local etcd + kube-apiserver on 127.0.0.1"
	@echo "make kind-e2e needs Docker: kind cluster, image, helm install, query (not run in this CI)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ragline demo --port $(PORT) --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check api operator tests bench dashboards
	$(BIN)/ruff format --check api operator tests bench dashboards
	$(BIN)/mypy api/ragapi operator/ragoperator

format: $(STAMP)
	$(BIN)/ruff format api operator tests bench
	$(BIN)/ruff check --fix api operator tests bench

# The cluster tests need etcd, kube-apiserver and helm, the trace test Jaeger, all built
# from the Go module proxy (cached under ~/.cache/ragline: minutes cold, instant warm).
test: lint
	$(RAGLINE_HACK)/install-prometheus.sh
	$(RAGLINE_HACK)/build.sh etcd kube-apiserver helm jaeger >/dev/null
	$(BIN)/pytest -q tests/unit tests/integration tests/cluster $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

test-cluster: $(STAMP)
	$(RAGLINE_HACK)/build.sh etcd kube-apiserver helm >/dev/null
	$(BIN)/pytest -q tests/cluster $(PYTEST_ARGS)

## crds: regenerate crds/ from api/ragapi/contract.py and copy them into the chart
crds: $(STAMP)
	$(BIN)/python -m ragoperator.crds --write crds
	mkdir -p charts/ragline/crds && cp crds/*.yaml charts/ragline/crds/

## operator: run the operator against $$KUBECONFIG, watching NAMESPACE (default: default)
operator: $(STAMP)
	$(BIN)/ragline operator --namespace $${NAMESPACE:-default}

kind-e2e:
	hack/kind-e2e.sh

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(DATA_DIR)
