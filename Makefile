# Wisp: the two everyday commands.
#
#   make run    the whole stack on this machine (API, local AWS, one CPU runner); Ctrl-C stops it
#   make test   the whole test suite (backend, then runner)
#
# Both work on a fresh Debian 12 machine with Python 3.11 and nothing done first: they install the
# missing system packages (apt, when root or with password-less sudo), create .venv and install the
# Python requirements again whenever a requirements file changed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# pip runs again when any of these changes (requirements-dev.txt includes the other two)
REQUIREMENTS := requirements-dev.txt requirements.txt runner_image/requirements.txt
STAMP := $(VENV)/.requirements-installed
# espeak-ng speaks the test audio; faster-whisper decodes audio with PyAV, so no ffmpeg is needed.
# chromium is the browser the end-to-end tests drive (with playwright-core from tests/clients).
# slapd and ldap-utils: the LDAP login tests start their own OpenLDAP server (tests/slapd.py) on
# loopback; the system's slapd service is never used.
APT_PACKAGES := espeak-ng
TEST_APT_PACKAGES := chromium slapd ldap-utils
# the real clients the end-to-end tests run (npm ci whenever the lock file changes)
CLIENTS_STAMP := tests/clients/node_modules/.installed
# Wisp's web app (web/): npm ci whenever its lock file changes; built into web/dist (served at `/`
# by `make run`) whenever a source changes. A build takes a few seconds.
WEB_STAMP := web/node_modules/.installed
WEB_BUILD := web/dist/index.html
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json
NEED_NPM = @command -v npm >/dev/null || { echo "$@ needs Node.js 20 with npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }

.PHONY: help run test system-packages web web-api

help:
	@echo "make run    start Wisp locally (API on http://127.0.0.1:$${PORT:-8000}, docs at /docs)"
	@echo "make test   run the whole test suite"

run: system-packages $(STAMP) $(WEB_BUILD)
	exec $(PY) -m wisp_local

# ruff, mypy (mypy.ini), then two pytest runs: the runner is its own project (runner_image/pytest.ini,
# its own `tests` package). All always run; any failure, or a run that collects no tests (status 5),
# fails. Each pytest run spreads its test files over TEST_WORKERS processes (pytest-xdist); a
# file's tests stay together, in order, in one process (--dist loadfile). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
PYTEST_WORKERS = -n $(TEST_WORKERS) --dist loadfile
test: APT_PACKAGES += $(TEST_APT_PACKAGES)
test: system-packages $(STAMP) $(CLIENTS_STAMP) $(WEB_BUILD)
	status=0; \
	$(VENV)/bin/ruff check --quiet . || status=$$?; \
	$(VENV)/bin/mypy || status=$$?; \
	npm test --prefix web --silent || status=$$?; \
	$(PY) -m pytest -q $(PYTEST_WORKERS) tests || status=$$?; \
	(cd runner_image && ../$(PY) -m pytest -q $(PYTEST_WORKERS)) || status=$$?; \
	exit $$status

$(STAMP): $(REQUIREMENTS) | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

$(CLIENTS_STAMP): tests/clients/package.json tests/clients/package-lock.json
	@command -v npm >/dev/null || { echo "make test needs Node.js 20 with npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_STAMP): web/package.json web/package-lock.json
	$(NEED_NPM)
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_BUILD): $(WEB_STAMP) $(WEB_SOURCES)
	npm run --prefix web --silent build

web: $(WEB_BUILD)

# The web app's API client (web/src/api/schema.d.ts), generated again from the app's own OpenAPI
# document; tests/web/test_api_client.py fails when the committed one is out of date.
web-api: $(STAMP) $(WEB_STAMP)
	$(PY) -c "from chalicelib import openapi; print(openapi.document_json())" > web/openapi.json
	npm run --prefix web --silent gen:api

$(PY): | system-packages
	python=$$(command -v python3.11 || command -v python3); "$$python" -m venv $(VENV)

# Installs only what is missing (dpkg -s), with one apt-get update. Without root and without
# password-less sudo it prints what to install and carries on (tests that need it then skip).
system-packages:
	@missing=""; \
	if ! command -v dpkg >/dev/null 2>&1; then \
	  echo "note: not a Debian system; make sure these are installed: $(APT_PACKAGES) (and Python 3.11 with venv)"; exit 0; \
	fi; \
	for p in $(APT_PACKAGES); do dpkg -s "$$p" >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ ! -x $(PY) ]; then \
	  python=$$(command -v python3.11 || command -v python3 || true); \
	  if [ -z "$$python" ]; then missing="$$missing python3 python3-venv"; \
	  elif ! "$$python" -c "import ensurepip" >/dev/null 2>&1; then \
	    missing="$$missing python$$("$$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"; fi; \
	fi; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; \
	else echo "note: missing system packages; please run: sudo apt-get install$$missing" >&2; exit 0; fi; \
	echo "installing system packages:$$missing"; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null

# ---------------------------------------------------------------------------------------------
# Deploying to AWS: targets owned by the infra engineers (make deploy STAGE=...); see
# infra/README.md.
# ---------------------------------------------------------------------------------------------
include infra/deploy.mk
