# Two commands matter: `make run` and `make test`. Everything else is what they build on.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
# `sam build` for the python3.12 runtime needs a python3.12 on PATH (pyenv has one here).
PY312_DIR := $(or $(shell ls -d $$HOME/.pyenv/versions/3.12*/bin 2>/dev/null | tail -n 1),$(shell dirname "$$(command -v python3.12)" 2>/dev/null))

.PHONY: setup run test unit component integration contract sam-checks chromium bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

run: setup ## the local cloud with a simulator per channel and a demo scenario
	$(BIN)/oms local up --scenario demo --duration 75

# Test files run side by side in four workers (pytest-xdist), each file in one worker: its local clouds
# and simulators are its own. Four, not one per core: the tests spend about half their time waiting
# (pollers, schedules, simulated faults), so four workers keep two cores busy; the files of minutes
# start first (tests/conftest.py). The SAM
# checks (their own venv, cfn-lint, sam validate --lint, sam build: mostly downloads) run meanwhile,
# and so does the chromium install for the dashboard page test, which waits for the last line of
# .chromium-install.log (tests/chromium.py); the target fails if any of the three fails, and the
# checks' output follows the tests'.
test: setup ## every test, plus the SAM/cfn-lint contract checks
	@rm -f .sam-checks.log .chromium-install.log; ( $(MAKE) --no-print-directory sam-checks > .sam-checks.log 2>&1; \
	  echo "sam-checks exit $$?" >> .sam-checks.log ) & checks=$$!; \
	( $(MAKE) --no-print-directory chromium > .chromium-install.log 2>&1; \
	  echo "chromium-install exit $$?" >> .chromium-install.log ) & browser=$$!; \
	$(BIN)/pytest -q -n 4 --dist loadfile --durations=20; tests=$$?; \
	wait $$checks; cat .sam-checks.log; wait $$browser; \
	grep -q "chromium-install exit 0" .chromium-install.log || { cat .chromium-install.log; exit 1; }; \
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

# Debian's chromium, for the dashboard page test (headless), when it is not there yet; the package
# lists are refreshed only when the install cannot find or fetch the package with the ones it has.
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get
chromium:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium present"; else \
	  $(APT_GET) install -y --no-install-recommends chromium || \
	  { $(APT_GET) update && $(APT_GET) install -y --no-install-recommends chromium; }; fi
	@command -v chromium && chromium --version

bench: setup
	$(BIN)/oms bench ingest --orders 20000

clean:
	rm -rf $(VENV) $(SAM_VENV) infra/.aws-sam
