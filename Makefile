# Two commands matter: `make run` and `make test`. Everything else is what they build on.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
# `sam build` for the python3.12 runtime needs a python3.12 on PATH (pyenv has one here).
PY312_DIR := $(or $(shell ls -d $$HOME/.pyenv/versions/3.12*/bin 2>/dev/null | tail -n 1),$(shell dirname "$$(command -v python3.12)" 2>/dev/null))

.PHONY: setup run test unit component integration contract sam-checks bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

run: setup ## the local cloud with a simulator per channel and a demo scenario
	$(BIN)/oms local up --scenario demo --duration 75

# Test files run side by side on every core (pytest-xdist), each file in one worker: its local clouds
# and simulators are its own; the allocation concurrency test alone takes a few minutes. The SAM
# checks (their own venv, cfn-lint, sam validate --lint, sam build: mostly downloads) run meanwhile;
# the target fails if either fails, and the checks' output follows the tests'.
test: setup ## every test, plus the SAM/cfn-lint contract checks
	@rm -f .sam-checks.log; ( $(MAKE) --no-print-directory sam-checks > .sam-checks.log 2>&1; \
	  echo "sam-checks exit $$?" >> .sam-checks.log ) & checks=$$!; \
	$(BIN)/pytest -q -n auto --dist loadfile; tests=$$?; \
	wait $$checks; cat .sam-checks.log; \
	grep -q "sam-checks exit 0" .sam-checks.log && exit $$tests || exit 1

unit: setup
	$(BIN)/pytest -q tests/unit

component: setup
	$(BIN)/pytest -q tests/component

integration: setup
	$(BIN)/pytest -q tests/integration

# aws-sam-cli and cfn-lint pin their own boto3/click: they live in their own virtual environment.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli cfn-lint
	touch $@

sam-checks: $(SAM_VENV)/.installed
	$(SAM_VENV)/bin/cfn-lint infra/template.yaml
	cd infra && PATH="$(PY312_DIR):$$PATH" SAM_CLI_TELEMETRY=0 ../$(SAM_VENV)/bin/sam validate --lint
	cd infra && PATH="$(PY312_DIR):$$PATH" SAM_CLI_TELEMETRY=0 ../$(SAM_VENV)/bin/sam build --cached

bench: setup
	$(BIN)/oms bench ingest --orders 20000

clean:
	rm -rf $(VENV) $(SAM_VENV) infra/.aws-sam
