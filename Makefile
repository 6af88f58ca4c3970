# Every target sets up what it needs: a fresh machine needs only Python 3.11+ and Node 20+
# (aws-cdk-lib 2.275.0's jsii runtime supports Node 22 and 24 and warns on 20: see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# npm ci of package.json's pins: the CDK CLI, and asl-validator for the tests.
NPM_STAMP := node_modules/.installed
# Unit and property tests: no CDK synth, no sandbox end-to-end run, no wheel build.
FAST_TESTS := tests/infra tests/packaging tests/drain_lambda/test_decision.py \
	tests/drain_lambda/test_config_and_requests.py -m "not synth and not slow"

.PHONY: help venv test test-fast lint demo invoke bench soak synth cdk bootstrap deploy destroy clean

help:
	@echo "make demo      - run a scale-in drain end to end on the embedded local AWS (no account needed)"
	@echo "make invoke EVENT=events/manual-dry-run.json - run the Lambda once on the local sandbox with an event file"
	@echo "make test      - lint and run every test (what CI runs)"
	@echo "make test-fast - lint and the unit and property tests (under a minute)"
	@echo "make bench     - cold start, CLI start, instance refresh, scale-in, release and burst benchmarks (figures; long: BURST_ARGS= shortens)"
	@echo "make soak      - 500 seeded random drains with faults, invariants checked (docs/soak.md)"
	@echo "make synth     - synthesize offline into cdk.out/ (CDK_ARGS='-c sample_cluster=true' by default)"
	@echo "make cdk ARGS='diff -c sample_cluster=true' - any cdk command, with the venv and the pinned CLI"
	@echo "make bootstrap - cdk bootstrap of the credentials' account and Region (once per environment)"
	@echo "make deploy    - cdk deploy (needs AWS credentials; pass CDK_ARGS='-c ...')"
	@echo "make destroy   - cdk destroy (same CDK_ARGS as deploy)"

# pip prints each package as it goes (no --quiet): a first install takes minutes.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@echo "== creating $(VENV) and installing the pinned packages (first run: a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt
	@echo "== installing this repository as the ecs_drain_hook package (editable)"
	$(BIN)/pip install --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)
	@echo "== $(VENV) ready"

venv: $(STAMP)

# The embedded local AWS: a scale-in drained end to end, no account needed (DEMO_ARGS="--help").
demo: $(STAMP)
	ECS_DRAIN_HOOK_PROGRESS=1 $(BIN)/python -m local_aws.demo $(DEMO_ARGS)

# One Lambda run on the local sandbox with an event file (the samples in events/), its answer printed.
EVENT ?=
invoke: $(STAMP)
	@test -n "$(EVENT)" || { echo "make invoke needs EVENT=<file>, e.g. EVENT=events/manual-dry-run.json" >&2; exit 2; }
	$(BIN)/python -m local_aws.invoke $(EVENT)

# Benchmarks print figures and assert nothing about time (BENCH_ARGS="--quick" for a short run).
# The burst runs its full sizes by default (long: BURST_ARGS= for the small size, ~30 s).
BURST_ARGS ?= --full
bench: $(STAMP)
	$(BIN)/python -m benchmarks.cold_start
	$(BIN)/python -m benchmarks.cli_start
	$(BIN)/python -m benchmarks.refresh $(REFRESH_ARGS)
	ECS_DRAIN_HOOK_PROGRESS=1 $(BIN)/python -m benchmarks.scale_in $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.release $(RELEASE_ARGS)
	ECS_DRAIN_HOOK_PROGRESS=1 $(BIN)/python -m benchmarks.burst $(BURST_ARGS)

# Seeded random drains with faults, invariants checked (docs/soak.md); SOAK_ARGS="--scenarios 50".
soak: $(STAMP)
	$(BIN)/python -m soak run --scenarios 500 $(SOAK_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The tests need node_modules too: asl-validator checks the state machine's definition.
test: lint $(NPM_STAMP)
	$(BIN)/python -m pytest

test-fast: lint $(NPM_STAMP)
	$(BIN)/python -m pytest $(FAST_TESTS)

# The CDK CLI is pinned in package.json; cdk.json runs `python3 app.py`, so the venv comes first.
CDK := PATH="$(abspath $(BIN)):$$PATH" npx --no-install cdk
CDK_ARGS ?=
ARGS ?= --help

$(NPM_STAMP): package.json package-lock.json
	@echo "== installing the pinned CDK CLI and asl-validator (npm ci)"
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

# Offline, the sample cluster's stack by default (no account needed to synthesize it).
SAMPLE_CLUSTER_ARGS := -c sample_cluster=true
synth: $(STAMP) $(NPM_STAMP)
	$(CDK) synth --quiet $(or $(CDK_ARGS),$(SAMPLE_CLUSTER_ARGS))

cdk: $(STAMP) $(NPM_STAMP)
	$(CDK) $(ARGS)

# The CLI learns the environment to bootstrap from a stack of the app (an environment-agnostic
# one resolves to the credentials' account and Region); the stack itself is not deployed.
bootstrap: $(STAMP) $(NPM_STAMP)
	$(CDK) bootstrap $(or $(CDK_ARGS),$(SAMPLE_CLUSTER_ARGS))

# Deploy and destroy act on real resources: the mode is never a default.
NEEDS_CDK_ARGS = @test -n "$(CDK_ARGS)" || { echo "make $@ needs CDK_ARGS: '$(SAMPLE_CLUSTER_ARGS)', or '-c cluster_name=<cluster> -c asg_names=<group>[,<group>...]' (attach mode)" >&2; exit 2; }

deploy: $(STAMP) $(NPM_STAMP)
	$(NEEDS_CDK_ARGS)
	$(CDK) deploy $(CDK_ARGS)

destroy: $(STAMP) $(NPM_STAMP)
	$(NEEDS_CDK_ARGS)
	$(CDK) destroy $(CDK_ARGS)

clean:
	rm -rf $(VENV) cdk.out node_modules build .pytest_cache .ruff_cache .hypothesis
