# The quick start is `make run`; while working, `make check` (fast, one verdict line) and,
# before you hand over, `make test` (everything, what CI runs). The rest are helpers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

# Bytecode caches: with PYTHONDONTWRITEBYTECODE set, every process recompiled our modules and
# pytest re-rewrote ~340 modules' asserts, about 3 s of CPU per test process.
unexport PYTHONDONTWRITEBYTECODE

.DEFAULT_GOAL := help
.PHONY: entity integration help install run worker check test lint format typecheck conform migrate migration create-admin docs api-check api-baseline bench clean
# pytest-xdist workers for `make test` (the machine's cores by default).
TEST_WORKERS ?= auto

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

install: $(DEV_STAMP) ## Create .venv and install the app with its dev tools (the others do it too)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e .
	@touch $@

$(DEV_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP_INSTALL) -e ".[dev]"
	@touch $@ $(RUN_STAMP)

run: $(RUN_STAMP) ## Migrate and serve on HOST:PORT (default 127.0.0.1:8000, SQLite in data/)
	$(BIN)/python -m backend.app.cli serve

worker: $(RUN_STAMP) ## Run the worker: every registered delivery, SMS first (run several on PostgreSQL)
	$(BIN)/python -m backend.app.worker

check: $(DEV_STAMP) ## Fast loop: lint, types, conform, drift, SQLite tests (not slow); one verdict
	@$(BIN)/python -m tools.check $(CHECK_ARGS)

test: $(DEV_STAMP) lint typecheck conform ## Lint, types, conform, then every test on SQLite and PostgreSQL (CI)
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(DEV_STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(DEV_STAMP) ## mypy --strict over backend/ and tools/
	$(BIN)/mypy

conform: $(DEV_STAMP) ## Check the MUST list: file:line + fix per problem (JSON: CONFORM_ARGS=--json)
	$(BIN)/python -m tools.conform $(CONFORM_ARGS)

migrate: $(RUN_STAMP) ## Upgrade the database at DATABASE_URL to the latest revision
	$(BIN)/python -m backend.app.cli migrate

create-admin: $(RUN_STAMP) ## Create an admin: make create-admin EMAIL=you@example.com
	$(BIN)/python -m backend.app.cli create-admin --email "$(EMAIL)"

entity: $(DEV_STAMP) ## Generate an entity from its spec: make entity SPEC=backend/app/docs/specs/task.yaml
	$(BIN)/python -m tools.generate $(SPEC)

integration: $(DEV_STAMP) ## Write a new integration (client, fake, outbox, worker, tests): make integration NAME=email
	$(BIN)/python -m tools.generate.integration $(NAME)

migration: $(DEV_STAMP) ## New Alembic revision from the models: make migration MSG="tasks: done flag"
	$(BIN)/python -m tools.migration new "$(MSG)" $(MIGRATION_ARGS)

docs: $(RUN_STAMP) ## Regenerate backend/app/docs/openapi.json and api.md from the app
	$(BIN)/python -m backend.app.docs.generate

api-check: $(RUN_STAMP) ## Fail if the app breaks clients of its version's API baseline
	$(BIN)/python -m backend.app.docs.api_baseline check

api-baseline: $(RUN_STAMP) ## Record the API baseline of the app's version (ACCEPT_BREAKING=1: see README)
	$(BIN)/python -m backend.app.docs.api_baseline record $(if $(ACCEPT_BREAKING),--accept-breaking)

bench: $(DEV_STAMP) ## Benchmark on PostgreSQL against two yardsticks (~5 min; README "Speed")
	@command -v wrk >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
		else sudo -n apt-get update -qq && sudo -n apt-get install -y -qq wrk; fi; }
# example:lead start
	$(BIN)/python -m tests.bench.run $(BENCH_ARGS)
# example:lead end
	$(BIN)/python -m tests.bench.bench_worker

# example:lead start
.PHONY: remove-example
remove-example: $(DEV_STAMP) ## Remove the worked example, the leads (backend_overview.md)
	$(BIN)/python -m tools.remove_example
# example:lead end

clean: ## Remove the virtual environment and caches (keeps data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
