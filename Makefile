# fixadapter: every target bootstraps .venv itself. The first install compiles quickfix from source with
# fixadapter's patch (patches/, about 5 to 10 minutes); the wheel is cached, so later installs take seconds.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QUICKFIX_BUILD := scripts/build_quickfix.py $(wildcard patches/quickfix-*.patch)
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(QUICKFIX_BUILD) | sha1sum | cut -c1-12)

.PHONY: install demo test lint protos bench soak stress clean

$(STAMP): pyproject.toml $(QUICKFIX_BUILD)
	@echo ">> creating $(VENV) and installing fixadapter (first time: quickfix compiles for 5 to 10 min)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel packaging
	$(PY) scripts/build_quickfix.py
	$(PY) -m pip install --progress-bar off -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m fixadapter demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check fixadapter tests bench soak
	$(VENV)/bin/mypy

# The Python modules of our cTrader Open API .proto files (fixadapter/protocols/openapi/proto), committed in
# fixadapter/protocols/openapi/generated: run after editing a .proto file.
protos: $(STAMP)
	PYTHON=$(PY) scripts/gen_openapi_protos.sh

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest
	@echo ">> the integration suite once more with every FIX session over TLS (the simulator's TLS ports)"
	FIXADAPTER_TEST_FIX_TLS=1 $(PY) -m pytest tests/integration

# Benchmarks run on their own (minutes, not part of `make test`): one table, bench/results/latest.json.
# The Redis and PostgreSQL rows use the local services when they answer and are skipped when not.
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/0
BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
bench: $(STAMP)
	FIXADAPTER_BENCH_REDIS_URL="$(BENCH_REDIS_URL)" FIXADAPTER_BENCH_POSTGRES_URL="$(BENCH_POSTGRES_URL)" \
		$(PY) -m bench --markdown

# The fault-and-abuse soak (minutes, not part of `make test`): the daemon and four strategies under a seeded
# schedule of kills (daemon, venue, Redis), PostgreSQL cuts and red-team inputs, then the invariants.
# SOAK_SECONDS (default 180) and SOAK_SEED (printed by every run; replays its schedule). The soak runs its own
# Redis and venue; PostgreSQL is a database it creates (and drops) on SOAK_POSTGRES_URL, else SQLite.
SOAK_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
soak: $(STAMP)
	SOAK_POSTGRES_URL="$(SOAK_POSTGRES_URL)" $(PY) -m soak

# Flakes show under load (not part of `make test`): the integration suite STRESS_RUNS times beside STRESS_HOGS
# busy processes (scripts/cpu_hog.py), then the pass/fail counts and every test that failed, with its error.
# STRESS_TLS=1 runs it over TLS; logs and JUnit reports go to var/stress/.
STRESS_RUNS ?= 3
STRESS_HOGS ?= 2
STRESS_TLS ?= 0
stress: $(STAMP)
	FIXADAPTER_TEST_REDIS_URL="$(BENCH_REDIS_URL)" FIXADAPTER_TEST_POSTGRES_URL="$(BENCH_POSTGRES_URL)" \
		$(PY) scripts/stress.py --runs $(STRESS_RUNS) --hogs $(STRESS_HOGS) $(if $(filter 1,$(STRESS_TLS)),--tls,)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache build *.egg-info
