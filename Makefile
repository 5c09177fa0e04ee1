# `make dev` runs the app, `make test` runs every check. Both install what they need first.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := $(shell ./devtools/bootstrap.sh)
NODE_HARNESS := tests/better_auth

.PHONY: install lint fmt typecheck test bench dev clean

install: .venv/.installed $(NODE_HARNESS)/node_modules/.installed

.venv/.installed: pyproject.toml uv.lock
	$(UV) sync --frozen
	@touch $@

$(NODE_HARNESS)/node_modules/.installed: $(NODE_HARNESS)/package.json $(NODE_HARNESS)/package-lock.json
	@command -v node >/dev/null || { echo "Node.js >= 20 is required (https://nodejs.org)"; exit 1; }
	npm ci --prefix $(NODE_HARNESS) --no-audit --no-fund
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

bench: install
	$(UV) run python -m bench.verify

dev: install
	$(UV) run python -m devtools.dev

clean:
	rm -rf .venv $(NODE_HARNESS)/node_modules .mypy_cache .ruff_cache .pytest_cache
