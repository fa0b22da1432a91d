# The daily commands. `make up` and `make test` are the README's quick start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2

.PHONY: setup up dev worker scheduler lint format typecheck test test-fast test-js test-postgres security clean

# Python and npm dependencies, the front-end bundle, Debian's Chromium for browser tests and
# PgBouncer for the tests of running behind it.
setup: $(VENV)/.installed static/vendor/.built /usr/bin/chromium /usr/sbin/pgbouncer

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

static/vendor/.built: package.json package-lock.json scripts/build-static.mjs scripts/icons.json
	npm ci --no-audit --no-fund
	npm run build
	touch $@

/usr/bin/chromium:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium

/usr/sbin/pgbouncer:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq pgbouncer

up: setup
	$(BIN)/throughline up --host $(HOST) --port $(PORT) --workers $(WORKERS) --demo

dev: setup
	$(BIN)/throughline web --host $(HOST) --port $(PORT)

worker: setup
	$(BIN)/throughline worker

scheduler: setup
	$(BIN)/throughline scheduler

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every test (the canvas's JavaScript, then unit, integration, browser, slow, faults) on SQLite
# and the embedded Redis; set TEST_DATABASE_URL and TEST_REDIS_URL to run the same suite on
# PostgreSQL and Redis.
test: setup test-js
	$(BIN)/python -m pytest -n auto

# The edit loop: unit and integration tests without the browser, fault and slow ones.
test-fast: setup
	$(BIN)/python -m pytest -n auto -m "not browser and not faults and not slow"

# The canvas's JavaScript (static/js/designer): its pure modules, and that its modules link,
# with Node's own test runner.
test-js:
	node --test tests/js/

test-postgres: setup test-js
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/0} \
	$(BIN)/python -m pytest -n auto

# The regression tests of the security findings alone (`make test` runs them too, on both
# databases in CI).
security: setup
	$(BIN)/python -m pytest -n auto -m security

clean:
	rm -rf $(VENV) node_modules static/vendor
