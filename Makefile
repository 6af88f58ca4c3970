# Every target sets up what it needs: a fresh machine needs only Python 3.11+ and Node 18+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1

.PHONY: help venv test lint unit demo synth deploy destroy clean

help:
	@echo "make demo   - run a scale-in drain end to end on the embedded local AWS (no account needed)"
	@echo "make test   - lint and run every test"
	@echo "make synth  - synthesize the CDK app offline (cdk.out/)"
	@echo "make deploy - cdk deploy (needs AWS credentials; pass CDK_ARGS='-c ...')"

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) cdk.out node_modules .pytest_cache .ruff_cache .hypothesis
