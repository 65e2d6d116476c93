# Everything a fresh clone needs: `make run`, `make test`, `make lint`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_VAR := $(CURDIR)/var/test
PYTEST_ARGS ?=
# `make run EMBEDDINGS=0` skips the local embedder (~200 MB): the semantic cache layer then stays off.
EMBEDDINGS ?= 1

.PHONY: run test lint bench bench-peers clean chromium agents promtool

$(VENV)/.base-installed: requirements/base.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/base.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.base-installed requirements/dev.txt requirements/embeddings.txt
	$(BIN)/python -m pip install -q -r requirements/dev.txt
	touch $@

$(VENV)/.embeddings-installed: $(VENV)/.base-installed requirements/embeddings.txt
	$(BIN)/python -m pip install -q -r requirements/embeddings.txt
	touch $@

# The semantic cache is on by default (seed 000): `make run` installs the local embedder.
run: $(VENV)/.base-installed $(if $(filter 0,$(EMBEDDINGS)),,$(VENV)/.embeddings-installed)
	$(BIN)/python -m gateway_platform.launcher

# The browser tests drive Debian's chromium: install it when missing (as root, no prompts).
# Where that is impossible they are skipped with the reason, not failed (under CI=true they fail).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium is not installed and could not be: the browser tests will be skipped (and fail under CI=true)"

# The agent CLIs the conformance suite drives (tests/agents), pinned to exact versions in
# tests/agents/package.json, installed from npm into var/agents. Their postinstall scripts only
# copy the platform binary out of the npm package. Where npm is missing the suite says so and skips
# (under CI=true it fails instead).
AGENTS_DIR := var/agents
agents:
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "npm is not installed: the agent conformance tests (Codex, Claude Code, OpenCode) will be skipped"; \
	elif ! cmp -s tests/agents/package.json $(AGENTS_DIR)/.installed; then \
	  mkdir -p $(AGENTS_DIR) && cp tests/agents/package.json $(AGENTS_DIR)/ \
	  && (cd $(AGENTS_DIR) && npm install --no-audit --no-fund --no-package-lock --loglevel=error >/dev/null) \
	  && cp tests/agents/package.json $(AGENTS_DIR)/.installed \
	  || echo "installing the agent CLIs from npm failed: the agent conformance tests will fail or skip"; \
	fi

# promtool (Debian's prometheus package) checks deploy/prometheus/alerts.yml and runs its unit tests.
# Where it cannot be installed those two checks are skipped; the metric-name parser test always runs.
promtool:
	@command -v promtool >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; } \
	  || echo "promtool is not installed and could not be: the promtool rule checks will be skipped"

# Throwaway embedded PostgreSQL + Redis under var/test unless TEST_DATABASE_URL /
# TEST_REDIS_URL name servers to use. The browser tests run in a process of their
# own: Playwright's sync API leaves an event loop behind that async tests trip on.
test: $(VENV)/.dev-installed chromium agents promtool
	@$(BIN)/python -m gateway_platform.embedded stop $(TEST_VAR) >/dev/null 2>&1; rm -rf $(TEST_VAR)
	@export GATEWAY_VAR_DIR=$(TEST_VAR) LOG_FORMAT=console; \
	if [ -n "$$TEST_DATABASE_URL" ]; then export DATABASE_URL="$$TEST_DATABASE_URL"; fi; \
	if [ -n "$$TEST_REDIS_URL" ]; then export REDIS_URL="$$TEST_REDIS_URL"; fi; \
	$(BIN)/python -m pytest --ignore=tests/browser $(PYTEST_ARGS); rc=$$?; \
	if [ -z "$(PYTEST_ARGS)" ]; then $(BIN)/python -m pytest tests/browser || rc=1; \
	else echo "NOTE: PYTEST_ARGS is set, so the browser tests (tests/browser) were NOT run; plain 'make test' runs them." >&2; fi; \
	$(BIN)/python -m gateway_platform.embedded stop $(TEST_VAR) >/dev/null 2>&1; exit $$rc

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.gateway --docs $(ARGS)

# This gateway against Portkey OSS and LiteLLM (pinned, installed under var/peers/ on first use),
# same mock upstream, pinned CPUs; ~10 min. ARGS="--only gateway-uvicorn" for a quick before/after.
ARGS ?=
bench-peers: $(VENV)/.dev-installed
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
	  || echo "wrk is not installed and could not be: using the Python load client"
	$(BIN)/python -m bench.peers $(ARGS)

clean:
	-$(BIN)/python -m gateway_platform.embedded stop var >/dev/null 2>&1
	rm -rf var $(VENV)
