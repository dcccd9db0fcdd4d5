# clickstream: `make demo` runs the whole pipeline, `make test` the whole test suite.
PYTHON ?= python3
export PYTHON

.PHONY: install services-up services-down up down reload demo test unit lint docs bench schema-check reliability chaos mutation

install:  ## Install missing Debian packages, then clickstream, its test tools and the optional confluent-kafka client (tested too)
	scripts/system-deps.sh run
	$(PYTHON) -m pip install -q -e '.[test,fast]'

services-up:  ## Start Kafka (KRaft), Redis and the reference auth service natively
	scripts/services.sh up

services-down:
	scripts/services.sh down

up: services-up  ## Also run the API (core/serve/__main__.py: granian) and the ETL schedule under supervisord
	scripts/app.sh up

down:  ## Stop the API, the ETL (every process, workers included) and the services
	scripts/app.sh down
	scripts/services.sh down

reload:  ## Deploy this checkout's code and the current CLICKSTREAM_* settings without a refused request (docs/deploy.md)
	scripts/app.sh reload

demo: install up  ## Send traffic of every event type and print what landed
	$(PYTHON) scripts/demo.py

test: install services-up  ## The specification's contract first, then the whole suite, on the real services
	scripts/system-deps.sh test
	@echo "== the specification's event contract (tests/conformance)"
	@$(PYTHON) -m pytest -q tests/conformance || { \
		echo "!! The built-in event types no longer accept the specification's events." >&2; \
		echo "!! Clients written to the specification would be refused: fix the schemas first." >&2; \
		exit 1; }
	CLICKSTREAM_TEST_SLOW=1 $(PYTHON) -m pytest --ignore=tests/conformance $(PYTEST_ARGS)

reliability: install services-up  ## Every fault scenario; rewrites the table of docs/reliability.md
	$(PYTHON) scripts/reliability.py

chaos: install  ## Random overlapping faults under traffic on a private stack (10 min); CHAOS_ARGS="--seed N"
	$(PYTHON) -m chaos $(CHAOS_ARGS)

bench: install services-up  ## Benchmarks on the real stack (~12 min); writes docs/benchmarks.md and the figures of docs/capacity.md
	scripts/system-deps.sh bench
	$(PYTHON) -m bench $(BENCH_ARGS)

unit:  ## Only the tests that need no service
	$(PYTHON) -m pytest tests/conformance/test_contract.py tests/unit $(PYTEST_ARGS)

mutation: install  ## Mutation testing of the promise-carrying modules (~15 min); see docs/testing.md
	$(PYTHON) scripts/mutation.py

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

docs:  ## Refresh the generated docs: docs/openapi.json and docs/configuration.md
	$(PYTHON) -m core.api.openapi > docs/openapi.json
	$(PYTHON) -m core.host.configuration > docs/configuration.md

schema-check:  ## Refuse unversioned breaking changes to event schemas since docs/openapi.json
	$(PYTHON) -m etl.cli schema-check
