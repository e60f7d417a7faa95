# Quick start: `make run` (server + demo data on http://127.0.0.1:8000) and `make test` (the whole suite).
# Both create or refresh .venv from pyproject.toml first; they need Python 3.11+ and nothing else.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

# The first interpreter on PATH that is Python 3.11 or newer (override with PYTHON=/path/to/python3.x).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; \
	then command -v $$p; break; fi; done)

.PHONY: help venv tools run migrate demo serve test lint format clean bench bench-smoke

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "error: Python 3.11 or newer is required (none found on PATH; set PYTHON=/path/to/python3.11)" >&2; \
		exit 1; fi
	@echo "Creating $(VENV) with $(PYTHON)"
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(STAMP) ## Create or update .venv from pyproject.toml

migrate: $(STAMP) ## Upgrade the database (DATABASE_URL, default ./oauth.db)
	$(BIN)/oauth-service migrate

# The issuer follows HOST and PORT unless OAUTH_ISSUER is set, so the printed URLs point at this server.
demo: migrate ## Seed the demo user and clients; print ready-to-paste commands
	OAUTH_ISSUER="$${OAUTH_ISSUER:-http://$(HOST):$(PORT)}" $(BIN)/oauth-service demo

run: demo ## Migrate, seed demo data, print commands, serve on HOST:PORT (default 127.0.0.1:8000; make run PORT=7700)
	OAUTH_ISSUER="$${OAUTH_ISSUER:-http://$(HOST):$(PORT)}" $(BIN)/oauth-service serve --host $(HOST) --port $(PORT)

# Chromium, wrk, docker compose and Node.js for the browser, benchmark-smoke, compose and relying-party tests
# (scripts/provision-tools): installed from Debian's packages as root, else Playwright's Chromium; otherwise one
# line per tool says what to run; then `npm ci` for tests/rp/node when its lock changed. Outside CI a tool that
# is still missing fails only the tests that need it; under CI it stops here.
tools: $(STAMP) ## Install what the tests drive besides Python (Chromium, wrk, docker compose, Node.js)
	@PYTHON=$(BIN)/python scripts/provision-tools || [ -z "$$CI" ]

test: $(STAMP) tools ## Run the whole suite with branch coverage
	@rc=0; $(BIN)/pytest --cov=oauth_service --cov-branch --cov-report=term-missing:skip-covered $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; exit $$rc

# Benchmark (bench/README.md): needs wrk and a Postgres reachable at BENCH_ADMIN_DSN; recreates BENCH_DATABASE
# and, for the growth measurement, $(BENCH_DATABASE)_small and $(BENCH_DATABASE)_large.
BENCH_WORKERS ?= 2
BENCH_DURATION ?= 8
BENCH_CONNECTIONS ?= 16,64
BENCH_ADMIN_DSN ?= postgresql://postgres@127.0.0.1:5432/postgres
BENCH_DATABASE ?= oauth_bench
BENCH_ARGS ?=
BENCH_OPTS = --workers $(BENCH_WORKERS) --connections $(BENCH_CONNECTIONS) \
	--admin-dsn $(BENCH_ADMIN_DSN) --database $(BENCH_DATABASE) $(BENCH_ARGS)

bench: $(STAMP) ## Benchmark every grant against a bare FastAPI baseline (about 10 minutes)
	$(BIN)/python -m bench.run --duration $(BENCH_DURATION) $(BENCH_OPTS)

bench-smoke: $(STAMP) ## The benchmark's few-second smoke run (CI): numbers and zero non-2xx
	$(BIN)/python -m bench.run --smoke $(BENCH_OPTS)

lint: $(STAMP) ## ruff format --check, ruff check, mypy --strict
	$(BIN)/ruff format --check src tests alembic
	$(BIN)/ruff check src tests alembic
	$(BIN)/mypy

format: $(STAMP) ## Apply ruff format and safe ruff fixes
	$(BIN)/ruff format src tests alembic
	$(BIN)/ruff check --fix src tests alembic

clean: ## Remove the venv, caches and the local SQLite database
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov test-artifacts
	rm -f oauth.db oauth.db-wal oauth.db-shm
