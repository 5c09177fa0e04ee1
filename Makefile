# `make dev` runs the app, `make test` runs every check. Both install what they need first.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := $(shell ./devtools/bootstrap.sh)
NODE_HARNESS := tests/better_auth
SHARED_SCHEMA := shared-schema

.PHONY: install lint fmt typecheck test gen bench dev clean

install: .venv/.installed $(NODE_HARNESS)/node_modules/.installed $(SHARED_SCHEMA)/node_modules/.installed

.venv/.installed: pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

$(NODE_HARNESS)/node_modules/.installed: $(NODE_HARNESS)/package.json $(NODE_HARNESS)/package-lock.json
	@command -v node >/dev/null || { echo "Node.js >= 20 is required (https://nodejs.org)"; exit 1; }
	npm ci --prefix $(NODE_HARNESS) --no-audit --no-fund
	@touch $@

$(SHARED_SCHEMA)/node_modules/.installed: $(SHARED_SCHEMA)/package.json $(SHARED_SCHEMA)/package-lock.json
	@command -v node >/dev/null || { echo "Node.js >= 20 is required (https://nodejs.org)"; exit 1; }
	npm ci --prefix $(SHARED_SCHEMA) --no-audit --no-fund
	@touch $@

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

fmt: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

typecheck: install
	$(UV) run mypy

# Uses TEST_DATABASE_URL when set; otherwise the tests start a throwaway PostgreSQL cluster.
test: lint typecheck
	$(UV) run pytest

# Regenerates shared-schema/ (SQL of both migrators, schema.json, openapi.json, api.d.ts);
# `make test` fails when a committed file differs from what this produces.
gen: install
	$(UV) run python -m devtools.gen

bench: install
	$(UV) run python -m bench.verify
	$(UV) run python -m bench.tasks_list

dev: install
	$(UV) run python -m devtools.dev

clean:
	rm -rf .venv $(NODE_HARNESS)/node_modules $(SHARED_SCHEMA)/node_modules .mypy_cache .ruff_cache .pytest_cache
