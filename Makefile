# Sinetti: `make run` starts the portal on the embedded defaults; `make test` passes the suite.
# Both set up everything they need on a fresh Debian 12 machine with Python 3.11.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := -e ".[test]" \
	-e plugins/storage_local -e plugins/storage_s3 -e plugins/verification_basic \
	-e plugins/mail_smtp -e plugins/devbox -e plugins/sms_http -e plugins/keys_local -e plugins/keys_aws_kms \
	-e plugins/scanner_clamav \
	-e themes/default -e themes/valtori
PG_URL := postgres://postgres:postgres@127.0.0.1:5432
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup run test lint unit e2e concurrency concurrency-postgres translations test-postgres \
	postgres browser zip-tools clamd bench mutation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml plugins/*/pyproject.toml themes/*/pyproject.toml
	$(BIN)/pip install -q $(PACKAGES)
	touch $@

setup: $(VENV)/.installed translations

translations: $(VENV)/.installed
	$(BIN)/python tools/i18n.py compile

run: setup
	$(BIN)/sinetti serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

# Debian packages the tests use: unzip and bsdtar for the zip checks, Chromium for Playwright.
zip-tools:
	@command -v unzip >/dev/null && command -v bsdtar >/dev/null || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq unzip libarchive-tools >/dev/null)

browser: zip-tools
	@command -v chromium >/dev/null || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null)

# ClamAV's daemon for the scanner tests, which start their own clamd on loopback with a
# signature database they write (nothing is downloaded). Debian's clamav-daemon and freshclam
# services are not used: without downloaded signatures they may fail to start, which is fine.
clamd:
	@command -v clamd >/dev/null || test -x /usr/sbin/clamd || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq clamav-daemon >/dev/null)

lint: setup
	$(BIN)/ruff check portal plugins themes tests tools bench
	$(BIN)/ruff format --check portal plugins themes tests tools bench
	$(BIN)/mypy portal plugins/*/sinetti_* themes/*/sinetti_*
	$(BIN)/python tools/i18n.py check

UNIT := $(BIN)/pytest tests/unit -p no:playwright -n 2

unit: setup zip-tools clamd
	$(UNIT)

e2e: setup browser
	$(BIN)/pytest tests/e2e

# Bursts of parallel requests at every limit of a real `sinetti serve --workers 2` (no browser).
concurrency: setup
	$(BIN)/pytest tests/concurrency -p no:playwright

concurrency-postgres: setup postgres
	SINETTI_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest tests/concurrency -p no:playwright

# The unit suite on both cores; the suites that run real servers one test at a time.
test: setup browser clamd lint
	$(UNIT)
	$(BIN)/pytest tests/e2e tests/concurrency

# PostgreSQL: install and start the local cluster, then run the unit and concurrency suites
# against it.
postgres:
	@command -v pg_ctlcluster >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq postgresql >/dev/null)
	@$(SUDO) pg_ctlcluster 15 main start 2>/dev/null || true
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
	@$(SUDO) -u postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" >/dev/null 2>&1 || \
		su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null

test-postgres: setup zip-tools clamd postgres
	SINETTI_TEST_DATABASE_URL=$(PG_URL) $(UNIT)
	SINETTI_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest tests/concurrency -p no:playwright

bench: setup
	$(BIN)/python bench/run.py

# Mutation testing (mutmut) of the security-relevant modules; [tool.mutmut] in pyproject.toml
# says which modules and which tests. Slow (the better part of an hour on two cores): not part
# of `make test` or CI. Starts from a fresh mutants/ (mutmut would keep stale copies of the
# modules it does not mutate), then prints the survivors and the score of each module.
mutation: setup
	$(BIN)/pip install -q -e ".[mutation]"
	rm -rf mutants
	# -x: a mutant is killed by its first failing test; the rest need not run.
	PYTEST_ADDOPTS=-x $(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut results
	$(BIN)/python tools/mutation_scores.py

clean:
	rm -rf $(VENV) data test-artifacts .pytest_cache .mypy_cache .ruff_cache
