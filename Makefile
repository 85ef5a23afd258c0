# bianmin: the two commands a newcomer needs are `make demo` / `make run` (main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install lock test test-sqlite demo run serve web bench migration clean browser

# Exactly the versions in requirements.lock (the set CI tested), each file checked against its hash; then the
# project itself, built with the lock's setuptools/wheel. --clear: a package dropped from the lock goes too.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Regenerate requirements.lock from pyproject.toml's ranges, keeping the current pins where they still fit.
# Upgrade everything: make lock LOCK_ARGS=--upgrade; one package: make lock LOCK_ARGS='--upgrade-package typer'
LOCK_VENV ?= .venv-lock
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q pip-tools==7.7.0; }
	$(LOCK_VENV)/bin/pip-compile -q --generate-hashes --extra test --all-build-deps --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links $(LOCK_ARGS) --output-file requirements.lock pyproject.toml

# The console's browser tests drive Debian's chromium (never a downloaded browser): installed here when missing and
# we may (root, or sudo without a password); otherwise those tests skip and say why.
browser:
	@bash .ci/ensure-chromium

# The whole suite on SQLite and on PostgreSQL (the local server if one answers, else one started in a temp dir).
test: $(STAMP) browser
	@PG_URL=$$(bash .ci/ensure-postgres) || exit 1; \
	echo "PostgreSQL for tests: $$PG_URL"; \
	BIANMIN_TEST_DATABASE_URL=$$PG_URL $(BIN)/pytest $(PYTEST_ARGS)

test-sqlite: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# A realistic month with planted problems, every flow run once, alerts and the report written.
# It has a data folder of its own, rebuilt on every run, so it never mixes with the real ledger in var/.
DEMO_DIR ?= var/demo
demo: $(STAMP)
	rm -rf $(DEMO_DIR)
	BIANMIN_DATA_DIR=$(DEMO_DIR) $(BIN)/bianmin db upgrade
	BIANMIN_DATA_DIR=$(DEMO_DIR) $(BIN)/bianmin demo $(DEMO_ARGS)

# The main job: the ledger on the embedded default (SQLite under var/) and every flow on its schedule.
run: $(STAMP)
	$(BIN)/bianmin db upgrade
	$(BIN)/bianmin serve

# The web console alone (bianmin serve starts it too unless BIANMIN_WEB=false).
web: $(STAMP)
	$(BIN)/bianmin web

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

migration: $(STAMP)
	$(BIN)/python -m models.ledger.migrations.regenerate

clean:
	rm -rf var .pytest_cache .hypothesis
