# Tenderproof: `make run` starts the embedded default, `make test` runs every check.
# Both install what they need first (Python packages into .venv, npm packages into node_modules).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
PORT   ?= 8000

.PHONY: install run test lint audit load-test postgres bench bench-proofs bench-anchor bench-verify bench-audit bench-api bench-import bench-explorer gas clean explorer-js explorer-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.installed node_modules/.installed

## The embedded default: SQLite in the working directory; records the demo tenders, integrates, verifies,
## anchors, then serves the HTTP API on http://127.0.0.1:$(PORT) (with the anchoring job) until Ctrl-C.
run: install
	$(VENV)/bin/tenderproof demo
	$(VENV)/bin/tenderproof serve --port $(PORT)

## Every check: lint, types, the compiled contract against a fresh offline build, the Python
## tests on SQLite and PostgreSQL (2 workers), and the Hardhat contract tests.
test: install postgres lint explorer-check
	$(PY) -m anchoring.compile --check
	TENDERPROOF_TEST_PG_URL=$(PG_URL) $(PY) -m pytest -n 2
	npx hardhat test

## Known vulnerabilities of the Python and npm dependencies (pip-audit, npm audit; see tools/audit.py
## for the ignore list and what is reported when the vulnerability services cannot be reached).
audit: install
	$(PY) tools/audit.py

## The load and fault test at full size (10 minutes: 4 API workers, 2 anchoring processes, a private
## PostgreSQL cluster, a Hardhat node; kill -9, RPC outage, PostgreSQL restart), results in bench/RESULTS-load.md.
load-test: install
	$(PY) bench/load_test.py --duration 600 --write bench/RESULTS-load.md

## The explorer's in-browser verifier: explorer/js bundled with esbuild (pinned in package.json)
## into explorer/static/explorer.js, which is committed; explorer-check fails if it is stale.
explorer-js: node_modules/.installed
	npm run -s build:explorer
	npm run -s build:desk

explorer-check: node_modules/.installed
	@tmp=$$(mktemp -d) && npx --no-install esbuild explorer/js/main.js --bundle --format=esm --minify --target=es2020 \
		--legal-comments=eof --outfile=$$tmp/explorer.js --log-level=warning && \
		cmp -s $$tmp/explorer.js explorer/static/explorer.js && rm -rf $$tmp || \
		{ echo "explorer/static/explorer.js is not the build of explorer/js: run make explorer-js" >&2; rm -rf $$tmp; exit 1; }
	@tmp=$$(mktemp -d) && npx --no-install esbuild explorer/js/desk.js --bundle --format=esm --minify --target=es2020 \
		--legal-comments=eof --outfile=$$tmp/desk.js --log-level=warning && \
		cmp -s $$tmp/desk.js explorer/static/desk.js && rm -rf $$tmp || \
		{ echo "explorer/static/desk.js is not the build of explorer/js/desk.js: run make explorer-js" >&2; rm -rf $$tmp; exit 1; }

## Gas figures of the anchor contract (Hardhat's in-process network).
gas: install
	npx hardhat run bench/gas.js

## Inclusion and consistency proofs at 1,000,000 entries against the same proofs from memory, both engines.
bench-proofs: install postgres
	TENDERPROOF_TEST_PG_URL=$(PG_URL) $(PY) bench/proof_bench.py --engine both --write bench/RESULTS-proofs.md

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## Start the local PostgreSQL cluster if it is not running (the tests need it; they never skip it).
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; echo "PostgreSQL did not start" >&2; exit 1

bench: install postgres
	$(PY) bench/log_bench.py --engine both --write bench/RESULTS-log.md

## Time from commit to final anchor on a local node with 1 s blocks.
bench-anchor: install
	$(PY) bench/anchor_bench.py --write bench/RESULTS-anchor.md

## Verifying a 100-event signed bundle, without and with chain calls (local node).
bench-verify: install
	$(PY) bench/verify_bench.py --write bench/RESULTS-verify.md

## `tenderproof audit` throughput on a 1,000,000-entry log, SQLite and PostgreSQL.
bench-audit: install postgres
	TENDERPROOF_TEST_PG_URL=$(PG_URL) $(PY) bench/audit_bench.py --engine both --entries 1000000 --write bench/RESULTS-audit.md

## The HTTP API against `serve --workers 2`: writes/s, bulk events/s, page and bundle latency on a 1,000,000-entry log
## (prints its table; bench/RESULTS-api.md holds the last run's figures with their analysis).
bench-api: install postgres
	TENDERPROOF_TEST_PG_URL=$(PG_URL) $(PY) bench/api_bench.py --engine both

## OCDS import on SQLite: releases/s and MB/s of a 100,000-release package, peak memory on a 1 GB file.
bench-import: install
	$(PY) bench/import_bench.py --releases 100000 --gigabytes 1.0 --write bench/RESULTS-import.md

## Explorer pages' server time (home, list, tender) on a 1,000,000-entry log and the tender page's weight.
bench-explorer: install postgres
	TENDERPROOF_TEST_PG_URL=$(PG_URL) $(PY) bench/explorer_bench.py --engine both --entries 1000000 --write bench/RESULTS-explorer.md

clean:
	rm -rf $(VENV) node_modules build .pytest_cache .hypothesis
