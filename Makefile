# `make dev` runs the app, `make test` runs every check. Both install what they need first.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
UV := $(shell ./devtools/bootstrap.sh)
NODE_HARNESS := tests/better_auth
SHARED_SCHEMA := shared-schema
FRONTEND := frontend
CHROMIUM ?= /usr/bin/chromium

.PHONY: install browser lint fmt typecheck test gen bench dev clean

install: .venv/.installed $(NODE_HARNESS)/node_modules/.installed \
	$(SHARED_SCHEMA)/node_modules/.installed $(FRONTEND)/node_modules/.installed

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

$(FRONTEND)/node_modules/.installed: $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	@command -v node >/dev/null || { echo "Node.js >= 20 is required (https://nodejs.org)"; exit 1; }
	npm ci --prefix $(FRONTEND) --no-audit --no-fund
	@touch $@

# The browser tests drive Debian's Chromium (no browser downloads): installed here when
# missing and we may (root with apt), otherwise say what to do.
browser:
	@test -x "$(CHROMIUM)" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "Chromium is needed for the browser tests: install it (apt-get install chromium) or set CHROMIUM=/path/to/chromium"; exit 1; fi; }

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	npm run --prefix $(FRONTEND) --silent lint

fmt: install
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

typecheck: install
	$(UV) run mypy
	npm run --prefix $(FRONTEND) --silent typecheck

# Uses TEST_DATABASE_URL when set; otherwise the tests start a throwaway PostgreSQL cluster.
test: lint typecheck browser
	CHROMIUM=$(CHROMIUM) $(UV) run pytest

# Regenerates shared-schema/ (SQL of both migrators, schema.json, openapi.json, api.d.ts);
# `make test` fails when a committed file differs from what this produces.
gen: install
	$(UV) run python -m devtools.gen

# About 4 minutes: bench.http needs wrk (apt-get install wrk) and builds the frontend once (~30 s).
bench: install
	$(UV) run python -m bench.verify
	$(UV) run python -m bench.tasks_list
	$(UV) run python -m bench.http

dev: install
	$(UV) run python -m devtools.dev

clean:
	rm -rf .venv $(NODE_HARNESS)/node_modules $(SHARED_SCHEMA)/node_modules \
	  $(FRONTEND)/node_modules $(FRONTEND)/.next .mypy_cache .ruff_cache .pytest_cache
