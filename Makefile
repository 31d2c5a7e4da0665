# The only entry point. `make` lists the targets; every target sets up what it needs.

PYTHON ?= python3.13
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt | cksum | cut -d' ' -f1)
# checkov pins boto3 and friends against the SAM CLI's and moto's versions: it gets its own venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cat requirements-checkov.txt | cksum | cut -d' ' -f1)
# MkDocs and the Material theme: their own venv too, so that the docs' pins never meet the others'.
DOCS_VENV := .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed-$(shell cat requirements-docs.txt | cksum | cut -d' ' -f1)
# make docs serves the site here (only on loopback).
DOCS_PORT ?= 8000
# sam build looks for python3.13 on PATH: the virtual environment provides it.
export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0

ENV ?= default
OVERRIDES ?=
ALLOW_QUEUE_REPLACEMENT ?=
DEPLOY_ARGS ?=
EVENT ?= events/sqs-single-success.json
PYTEST_ARGS ?=
BENCH_ARGS ?=
RUN_ARGS ?=
UP_ARGS ?=
# make up's emulator port (4566 is LocalStack's); DOWNSTREAM_URL=<your service> replaces the demo one.
UP_PORT ?= 4599
LOGS_ARGS ?=
SEND_ARGS ?=
DLQ_ARGS ?=
REDRIVE_ARGS ?=
SCHEDULE_ARGS ?=
INVOKE_ARGS ?=
SOAK_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv docs docs-build lint format test test-fast validate security build deploy deploy-guided run up logs soak invoke send dlq-peek redrive bench bench-backoff bench-big-batch bench-inflight schedule lock clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.13 (the Lambda runtime) or run make PYTHON=/path/to/python3.13" >&2; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(STAMP) ## create .venv with the pinned dev requirements

$(CHECKOV_STAMP): requirements-checkov.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found" >&2; exit 1; }
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

$(DOCS_STAMP): requirements-docs.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found" >&2; exit 1; }
	rm -rf $(DOCS_VENV)
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-docs.txt
	touch $@

docs: $(DOCS_STAMP) ## serve the docs site on http://127.0.0.1:8000 (DOCS_PORT), rebuilt as you edit
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-build: $(DOCS_STAMP) ## build the docs site strictly (a broken link or anchor fails) into .local/site
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict

lint: $(STAMP) ## ruff, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions local benchmarks tools tests

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

validate: $(STAMP) ## sam validate --lint (SAM CLI and cfn-lint)
	$(BIN)/sam validate --lint

# cfn-lint fails on warnings as well as errors; checkov fails on any check not skipped in the
# template's Metadata (each skip carries its reason). --skip-download: no calls to Prisma Cloud.
security: $(STAMP) $(CHECKOV_STAMP) ## cfn-lint (errors and warnings) and checkov on template.yaml
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --skip-download --compact --quiet

test: lint validate security docs-build ## lint, validate the template, security checks and every test
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP) ## the tests without the slow ones (SAM CLI, local system)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

build: $(STAMP) ## sam build: the function and its dependency layer into .aws-sam/build
	$(BIN)/sam build

deploy-guided: build ## sam deploy --guided: the first deployment, prompting for DownstreamUrl and the rest
	$(BIN)/sam deploy --guided

# OVERRIDES are laid over ENV's parameter_overrides, never instead of them (sam deploy's own
# --parameter-overrides replaces the whole list); an update that would replace the queues is
# refused unless ALLOW_QUEUE_REPLACEMENT=1 (docs/deploy-safety.md).
deploy: build ## sam deploy --config-env $(ENV) with ENV's overrides and OVERRIDES="K=V ..." on top (make deploy ENV=prod)
	OVERRIDES='$(subst ','\'',$(OVERRIDES))' ALLOW_QUEUE_REPLACEMENT='$(ALLOW_QUEUE_REPLACEMENT)' \
		$(BIN)/python -m tools.deploy --config-env $(ENV) --sam $(BIN)/sam $(DEPLOY_ARGS)

run: build ## the whole system locally: emulator, function, demo downstream; ENV=prod applies samconfig's overrides (RUN_ARGS="--help")
	PYTHONPATH=functions $(BIN)/python -m local.run --config-env $(ENV) $(RUN_ARGS)

up: build ## the local system on 127.0.0.1:4599 (UP_PORT) until Ctrl-C, for your own clients; ENV as make run (UP_ARGS="--help")
	PYTHONPATH=functions $(BIN)/python -m local.up --config-env $(ENV) --port $(UP_PORT) $(UP_ARGS)

logs: $(STAMP) ## the function's logs of make up (followed) or the last make run (LOGS_ARGS="--message-id ID --level WARNING")
	@$(BIN)/python -m local.logs $(LOGS_ARGS)

soak: build ## 5,000 messages under every fault, judged: nothing lost, duplicates explained (SOAK_ARGS="--help")
	PYTHONPATH=functions $(BIN)/python -m local.soak $(SOAK_ARGS)

# Standard output is the function's response JSON only (`make -s invoke | jq .`): the venv's and
# sam build's output and make's own echo go to standard error, as for make bench.
invoke: ## one invocation of the built function with EVENT; ENV=prod, INVOKE_ARGS="--parameter-overrides K=V ..." (--help)
	@$(MAKE) --no-print-directory venv >&2
	@$(BIN)/sam build >&2
	@PYTHONPATH=functions $(BIN)/python -m local.invoke $(EVENT) --config-env $(ENV) $(INVOKE_ARGS)

send: $(STAMP) ## send messages to the stack of ENV's samconfig section, AWS_ENDPOINT_URL, or make up's (ENV=local)
	$(BIN)/python -m local.send --config-env $(ENV) $(SEND_ARGS)

dlq-peek: $(STAMP) ## list the DLQ of ENV's stack (ENV=local: make up's) without consuming it (DLQ_ARGS=...)
	@$(BIN)/python -m tools.dlq_peek --config-env $(ENV) $(DLQ_ARGS)

redrive: $(STAMP) ## DLQ back to the source queue, failed jobs re-invoked (REDRIVE_ARGS="--help")
	@$(BIN)/python -m tools.redrive --config-env $(ENV) $(REDRIVE_ARGS)

# The benchmarks measure what `sam build` produced; its output goes to stderr, so that stdout is
# the table (and with --json, one JSON line last).
bench: $(STAMP) ## throughput, cold start, sizes side by side (BENCH_ARGS="--json --repeats N"; ~6 min; not the backoff study)
	@$(BIN)/sam build >&2
	@PYTHONPATH=functions:. $(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

bench-big-batch: $(STAMP) ## one batch of 10,000 records in a Lambda-like process, half and all failing: wall time vs timeout, peak RSS (~5 min; BENCH_ARGS=--json ...)
	@$(BIN)/sam build >&2
	@PYTHONPATH=functions:. $(BIN)/python -m benchmarks.big_batch $(BENCH_ARGS)

bench-inflight: $(STAMP) ## SQS's in-flight limit at 1M and 10M messages a day through 24 h outages, with the mapping's scaling (~2 min; BENCH_ARGS=--json ...)
	@PYTHONPATH=functions:. $(BIN)/python -m benchmarks.inflight $(BENCH_ARGS)

bench-backoff: $(STAMP) ## the backoff study, 6-10 min, not in make bench: tables, plots in docs/backoff-study (BENCH_ARGS=--json ...)
	@PYTHONPATH=functions $(BIN)/python -m benchmarks.backoff_study $(BENCH_ARGS)

schedule: $(STAMP) ## each attempt's delay range and cumulative span (SCHEDULE_ARGS=--max-receive-count 20 ...)
	@PYTHONPATH=functions $(BIN)/python -m benchmarks.schedule $(SCHEDULE_ARGS)

lock: ## re-pin requirements-dev.txt, requirements-checkov.txt and requirements-docs.txt from their .in files
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements-dev.in
	{ echo "# Pinned by 'make lock' from requirements-dev.in; do not edit by hand."; .venv-lock/bin/pip freeze; } > requirements-dev.txt
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements-checkov.in
	{ echo "# Pinned by 'make lock' from requirements-checkov.in; do not edit by hand."; .venv-lock/bin/pip freeze; } > requirements-checkov.txt
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements-docs.in
	{ echo "# Pinned by 'make lock' from requirements-docs.in; do not edit by hand."; .venv-lock/bin/pip freeze; } > requirements-docs.txt
	rm -rf .venv-lock

clean: ## remove the virtual environment and build output
	rm -rf $(VENV) $(CHECKOV_VENV) $(DOCS_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
