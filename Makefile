# bianmin: the two commands a newcomer needs are `make demo` / `make run` (main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false

.PHONY: install test test-sqlite demo run serve bench migration clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The whole suite on SQLite and on PostgreSQL (the local server if one answers, else one started in a temp dir).
test: $(STAMP)
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

bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

migration: $(STAMP)
	$(BIN)/python -m models.migrations.regenerate

clean:
	rm -rf var .pytest_cache .hypothesis
