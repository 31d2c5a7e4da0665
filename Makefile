# The only entry point. `make` lists the targets; every target sets up what it needs.

PYTHON ?= python3.13
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt | cksum | cut -d' ' -f1)
# checkov pins boto3 and friends against the SAM CLI's and moto's versions: it gets its own venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell cat requirements-checkov.txt | cksum | cut -d' ' -f1)
# LocalStack's SQS provider, the second SQS implementation of the tests, pins boto3 and
# cryptography against the SAM CLI's and moto's: it gets its own venv too.
LOCALSTACK_VENV := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed-$(shell cat requirements-localstack.txt | cksum | cut -d' ' -f1)
# uv (from PyPI, in a small venv of its own) creates and fills the others: seconds where pip
# takes minutes. USE_UV=0: pip, as before.
USE_UV ?= 1
UV_VENV := .venv-uv
UV_STAMP := $(UV_VENV)/.installed-$(shell cat requirements-uv.txt | cksum | cut -d' ' -f1)
# Never a Python uv would download: the venvs use $(PYTHON), the Lambda runtime's version.
export UV_PYTHON_DOWNLOADS := never
# mutmut needs a newer click than the SAM CLI's pin: its own venv, which reads .venv's packages
# after its own (make mutate).
MUTATE_VENV := .venv-mutate
MUTATE_STAMP := $(MUTATE_VENV)/.installed-$(shell cat requirements-mutate.txt | cksum | cut -d' ' -f1)
# MkDocs and the Material theme: their own venv too, so that the docs' pins never meet the others'.
DOCS_VENV := .venv-docs
DOCS_STAMP := $(DOCS_VENV)/.installed-$(shell cat requirements-docs.txt | cksum | cut -d' ' -f1)
# make docs serves the site here (only on loopback).
DOCS_PORT ?= 8000
# sam build looks for python3.13 on PATH: the virtual environment provides it.
export PATH := $(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0

# sam build's output, and the stamp that says which inputs it was built from: make's own
# dependency rules rebuild only when functions/, layers/, template.yaml or samconfig.toml (its
# build parameters) changed, or the venv (the SAM CLI) did.
BUILD_STAMP := .aws-sam/.built
BUILD_INPUTS := template.yaml samconfig.toml $(shell find functions layers -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*/.mypy_cache/*' 2>/dev/null)
# The commands that run the built function parse their flags first (a bad flag or --help
# answers before any build), then ask for the build this way (local/commands/build.py).
BUILD_FIRST := LOCAL_BUILD_COMMAND="$(MAKE) --no-print-directory build"

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
DOCS_SAMPLES_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv localstack-venv docs docs-build docs-samples lint format test test-fast test-localstack validate security build deploy deploy-guided run up logs soak mutate invoke send dlq-peek redrive bench bench-backoff bench-breaker bench-big-batch bench-record-cpu bench-inflight schedule lock clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# $(call make-venv,folder,requirements file): a fresh virtual environment with those pins (and
# pip, which sam build's layer recipe runs).
define make-venv
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.13 (the Lambda runtime) or run make PYTHON=/path/to/python3.13" >&2; exit 1; }
	rm -rf $(1)
	$(if $(filter 1,$(USE_UV)),@$(MAKE) --no-print-directory $(UV_STAMP))
	$(if $(filter 1,$(USE_UV)),$(UV_VENV)/bin/uv venv --quiet --seed --python $(PYTHON) $(1),$(PYTHON) -m venv $(1))
	$(if $(filter 1,$(USE_UV)),$(UV_VENV)/bin/uv pip install --quiet --python $(1)/bin/python -r $(2),$(1)/bin/pip install --quiet --disable-pip-version-check -r $(2))
	touch $(1)/.installed-$$(cat $(2) | cksum | cut -d' ' -f1)
endef

$(UV_STAMP): requirements-uv.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.13 (the Lambda runtime) or run make PYTHON=/path/to/python3.13" >&2; exit 1; }
	rm -rf $(UV_VENV)
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-uv.txt
	touch $@

$(STAMP): requirements-dev.txt
	$(call make-venv,$(VENV),requirements-dev.txt)

venv: $(STAMP) ## create .venv with the pinned dev requirements

$(CHECKOV_STAMP): requirements-checkov.txt
	$(call make-venv,$(CHECKOV_VENV),requirements-checkov.txt)

$(MUTATE_STAMP): requirements-mutate.txt $(STAMP)
	rm -rf $(MUTATE_VENV)
	$(PYTHON) -m venv $(MUTATE_VENV)
	$(MUTATE_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-mutate.txt
	$(BIN)/python -c "import sysconfig; print(sysconfig.get_path('purelib'))" \
		> "$$($(MUTATE_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))")/zz-dev-venv.pth"
	touch $@

$(LOCALSTACK_STAMP): requirements-localstack.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found" >&2; exit 1; }
	rm -rf $(LOCALSTACK_VENV)
	$(PYTHON) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-localstack.txt
	touch $@

localstack-venv: $(LOCALSTACK_STAMP) ## create .venv-localstack (LocalStack's SQS, for the tests) from requirements-localstack.txt

$(DOCS_STAMP): requirements-docs.txt
	$(call make-venv,$(DOCS_VENV),requirements-docs.txt)

docs: $(DOCS_STAMP) ## serve the docs site on http://127.0.0.1:8000 (DOCS_PORT), rebuilt as you edit
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:$(DOCS_PORT)

docs-build: $(DOCS_STAMP) ## build the docs site strictly (a broken link or anchor fails) into .local/site
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict

docs-samples: build ## rerun the commands whose output README.md and docs/ show, and write it in (~5 min; DOCS_SAMPLES_ARGS=--long: +25 min)
	PYTHONPATH=functions $(BIN)/python -m local.commands.docs_samples $(DOCS_SAMPLES_ARGS)

lint: $(STAMP) ## ruff, ruff format --check, mypy, lint-imports (the import contracts in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy functions local benchmarks tools tests
	PYTHONPATH=functions $(BIN)/lint-imports --no-cache

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

test: lint validate security docs-build $(LOCALSTACK_STAMP) ## lint, validate the template, security checks, the docs site strictly, every test (LocalStack's too)
	$(BIN)/pytest $(PYTEST_ARGS)

test-localstack: $(STAMP) $(LOCALSTACK_STAMP) ## only the tests against LocalStack's SQS, the second SQS implementation (~1 min)
	$(BIN)/pytest -m localstack $(PYTEST_ARGS)

test-fast: $(STAMP) ## the tests without the slow ones (SAM CLI, local system, LocalStack)
	$(BIN)/pytest -m "not slow and not localstack" $(PYTEST_ARGS)

$(BUILD_STAMP): $(STAMP) $(BUILD_INPUTS)
	$(BIN)/sam build
	touch $@

build: $(BUILD_STAMP) ## sam build into .aws-sam/build, when functions/, layers/ or template.yaml changed

deploy-guided: build ## sam deploy --guided: the first deployment, prompting for DownstreamUrl and the rest
	$(BIN)/sam deploy --guided

# OVERRIDES are laid over ENV's parameter_overrides, never instead of them (sam deploy's own
# --parameter-overrides replaces the whole list); an update that would replace the queues is
# refused unless ALLOW_QUEUE_REPLACEMENT=1 (docs/deploy-safety.md).
deploy: build ## sam deploy --config-env $(ENV) with ENV's overrides and OVERRIDES="K=V ..." on top (make deploy ENV=prod)
	OVERRIDES='$(subst ','\'',$(OVERRIDES))' ALLOW_QUEUE_REPLACEMENT='$(ALLOW_QUEUE_REPLACEMENT)' \
		$(BIN)/python -m tools.deploy --config-env $(ENV) --sam $(BIN)/sam $(DEPLOY_ARGS)

run: $(STAMP) ## the whole system locally: emulator, function, demo downstream; ENV=prod applies samconfig's overrides (RUN_ARGS="--help")
	@$(BUILD_FIRST) PYTHONPATH=functions $(BIN)/python -m local.commands.run --config-env $(ENV) $(RUN_ARGS)

up: $(STAMP) ## the local system on 127.0.0.1:4599 (UP_PORT) until Ctrl-C, for your own clients; ENV as make run (UP_ARGS="--help")
	@$(BUILD_FIRST) PYTHONPATH=functions $(BIN)/python -m local.commands.up --config-env $(ENV) --port $(UP_PORT) $(UP_ARGS)

logs: $(STAMP) ## the function's logs of make up (followed) or the last make run (LOGS_ARGS="--message-id ID --level WARNING")
	@$(BIN)/python -m local.commands.logs $(LOGS_ARGS)

soak: $(STAMP) ## 5,000 messages under every fault, judged: nothing lost, duplicates explained (SOAK_ARGS="--help")
	@$(BUILD_FIRST) PYTHONPATH=functions $(BIN)/python -m local.commands.soak $(SOAK_ARGS)

# mutmut imports the code under test by its path from the folder it runs in: a staging copy
# with the packages top-level (consumer.sqs_batch, shared.backoff), as Lambda imports them.
mutate: $(MUTATE_STAMP) ## mutation testing of the backoff, the consumer's record and batch policy and the breaker's rules (~1 h on 2 loaded cores; not in make test)
	rm -rf .mutate && mkdir .mutate
	cp -r functions/. local benchmarks tools tests template.yaml events pyproject.toml .mutate/
	cd .mutate && $(abspath $(MUTATE_VENV))/bin/mutmut run --max-children 2
	cd .mutate && $(abspath $(MUTATE_VENV))/bin/mutmut results

# Standard output is the function's response JSON only (`make -s invoke | jq .`): the venv's and
# sam build's output and make's own echo go to standard error, as for make bench.
invoke: ## one invocation of the built function with EVENT; ENV=prod, INVOKE_ARGS="--parameter-overrides K=V ..." (--help)
	@$(MAKE) --no-print-directory venv >&2
	@$(BUILD_FIRST) PYTHONPATH=functions $(BIN)/python -m local.commands.invoke $(EVENT) --config-env $(ENV) $(INVOKE_ARGS)

send: $(STAMP) ## send messages to the stack of ENV's samconfig section, AWS_ENDPOINT_URL, or make up's (ENV=local)
	$(BIN)/python -m local.commands.send --config-env $(ENV) $(SEND_ARGS)

dlq-peek: $(STAMP) ## list the DLQ of ENV's stack (ENV=local: make up's) without consuming it (DLQ_ARGS=...)
	@$(BIN)/python -m tools.dlq_peek --config-env $(ENV) $(DLQ_ARGS)

redrive: $(STAMP) ## DLQ back to the source queue, failed jobs re-invoked (REDRIVE_ARGS="--help")
	@$(BIN)/python -m tools.redrive --config-env $(ENV) $(REDRIVE_ARGS)

# The benchmarks measure what `sam build` produced; its output goes to stderr, so that stdout is
# the table (and with --json, one JSON line last).
bench: $(STAMP) ## throughput, cold start, sizes side by side (BENCH_ARGS="--json --repeats N"; ~6 min; not the backoff study)
	@$(MAKE) --no-print-directory build >&2
	@PYTHONPATH=functions:. $(BIN)/python -m benchmarks.bench $(BENCH_ARGS)

bench-record-cpu: $(STAMP) ## make bench's CPU per record at 0 ms alone, at a chosen DeliveryConcurrency (~20 s; BENCH_ARGS="--delivery-concurrency 1 --profile 20")
	@PYTHONPATH=functions:. $(BIN)/python -m benchmarks.record_cpu $(BENCH_ARGS)

bench-big-batch: $(STAMP) ## one batch of 10,000 records in a Lambda-like process, half and all failing: wall time vs timeout, peak RSS (~5 min; BENCH_ARGS=--json ...)
	@$(BIN)/sam build >&2
	@PYTHONPATH=functions:. $(BIN)/python -m benchmarks.big_batch $(BENCH_ARGS)

bench-inflight: $(STAMP) ## SQS's in-flight limit at 1M and 10M messages a day through 24 h outages, with the mapping's scaling (~2 min; BENCH_ARGS=--json ...)
	@PYTHONPATH=functions:. $(BIN)/python -m benchmarks.inflight $(BENCH_ARGS)

bench-backoff: $(STAMP) ## the backoff study, 6-10 min, not in make bench: tables, plots in docs/backoff-study (BENCH_ARGS=--json ...)
	@PYTHONPATH=functions $(BIN)/python -m benchmarks.backoff_study $(BENCH_ARGS)

bench-breaker: $(STAMP) ## the breaker against Lambda's control plane (quota, actuation delay), ~2 min: docs/breaker-study.md (BENCH_ARGS=--json ...)
	@PYTHONPATH=functions $(BIN)/python -m benchmarks.breaker_control_plane $(BENCH_ARGS)

schedule: $(STAMP) ## each attempt's delay range and cumulative span (SCHEDULE_ARGS=--max-receive-count 20 ...)
	@PYTHONPATH=functions $(BIN)/python -m benchmarks.schedule $(SCHEDULE_ARGS)

# One throwaway venv per file: each set is resolved on its own, as each venv is made.
LOCKED := dev checkov docs localstack
lock: ## re-pin requirements-{dev,checkov,docs,localstack}.txt from their .in files
	for name in $(LOCKED); do \
		rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock && \
		.venv-lock/bin/pip install --quiet -r requirements-$$name.in && \
		{ echo "# Pinned by 'make lock' from requirements-$$name.in; do not edit by hand."; \
		  .venv-lock/bin/pip freeze; } > requirements-$$name.txt || exit 1; \
	done
	rm -rf .venv-lock

clean: ## remove the virtual environment and build output
	rm -rf $(VENV) $(CHECKOV_VENV) $(DOCS_VENV) $(UV_VENV) $(LOCALSTACK_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
