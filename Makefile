# Ragline. `make demo` and `make test` do all their own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8080
DATA_DIR ?= .ragline-demo
PYTEST_ARGS ?=

.PHONY: help install demo serve test test-unit test-integration lint format bench clean

help:
	@echo "make demo     start Postgres+Redis (embedded), ingest examples/corpus, serve on 127.0.0.1:$(PORT)"
	@echo "make test     install everything the tests need, lint, run unit + integration tests"
	@echo "make lint     ruff (lint + format check) and mypy on api/ and operator/"
	@echo "make bench    retrieval, API and ingestion benchmarks (tables with ratios)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ragline demo --port $(PORT) --data-dir $(DATA_DIR)

lint: $(STAMP)
	$(BIN)/ruff check api operator tests bench
	$(BIN)/ruff format --check api operator tests bench
	$(BIN)/mypy api/ragapi operator/ragoperator

format: $(STAMP)
	$(BIN)/ruff format api operator tests bench
	$(BIN)/ruff check --fix api operator tests bench

test: lint
	$(BIN)/pytest -q tests/unit tests/integration $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(BIN)/pytest -q tests/integration $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(DATA_DIR)
