# Every target sets up what it needs: a fresh machine needs only Python 3.11+ and Node 18+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# jsii reads a list of Node major versions whose end-of-life banner to silence.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 18,19,20,21
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

.PHONY: help venv test lint demo bench synth deploy destroy clean

help:
	@echo "make demo   - run a scale-in drain end to end on the embedded local AWS (no account needed)"
	@echo "make test   - lint and run every test"
	@echo "make bench  - cold start, scale-in and burst benchmarks (BENCH_ARGS='--quick', BURST_ARGS='--full')"
	@echo "make synth  - synthesize offline into cdk.out/ (CDK_ARGS='-c demo=true' by default)"
	@echo "make deploy - cdk deploy (needs AWS credentials; pass CDK_ARGS='-c ...')"
	@echo "make destroy - cdk destroy (same CDK_ARGS as deploy)"

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

# The embedded local AWS: a scale-in drained end to end, no account needed (DEMO_ARGS="--help").
demo: $(STAMP)
	$(BIN)/python -m local_aws.demo $(DEMO_ARGS)

# Benchmarks print figures and assert nothing about time (BENCH_ARGS="--quick" for a short run).
# The burst runs a small size by default; BURST_ARGS="--full" runs the issue's sizes (long).
bench: $(STAMP)
	$(BIN)/python -m benchmarks.cold_start
	$(BIN)/python -m benchmarks.scale_in $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.burst $(BURST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

# The CDK CLI is pinned in package.json; cdk.json runs `python3 app.py`, so the venv comes first.
NPM_STAMP := node_modules/.installed
CDK := PATH="$(abspath $(BIN)):$$PATH" npx --no-install cdk
CDK_ARGS ?=

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

synth: $(STAMP) $(NPM_STAMP)
	$(CDK) synth --quiet $(or $(CDK_ARGS),-c demo=true)

deploy: $(STAMP) $(NPM_STAMP)
	$(CDK) deploy $(CDK_ARGS)

destroy: $(STAMP) $(NPM_STAMP)
	$(CDK) destroy $(CDK_ARGS)

clean:
	rm -rf $(VENV) cdk.out node_modules .pytest_cache .ruff_cache .hypothesis
