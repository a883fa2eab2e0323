# Two commands: `make demo` runs the main job, `make test` runs every check CI runs.
# Both create .venv on first use: `demo` installs the package, `test` adds its test extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

# The oldest OpenTelemetry releases pyproject.toml supports (CI runs the suite on them too).
OLDEST_VENV := .venv-oldest
OLDEST_PINS := 'opentelemetry-api==1.40.*' 'opentelemetry-sdk==1.40.*' \
	'opentelemetry-exporter-otlp==1.40.*' 'opentelemetry-proto==1.40.*' \
	'opentelemetry-instrumentation==0.61b0' 'opentelemetry-instrumentation-logging==0.61b0'

.PHONY: demo dashboard test lint typecheck pytest test-fallbacks test-oldest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/otelkit demo

$(VENV)/.installed-web: $(VENV)/.installed
	$(PIP) -e '.[web]'
	touch $@

# The jobs dashboard over a temporary store of demo jobs (docs/jobs-web.md).
dashboard: $(VENV)/.installed-web
	$(BIN)/otelkit jobs web --demo

test: lint typecheck pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# The suite with every SDK shortcut forced off (their public fallbacks).
test-fallbacks: $(VENV)/.installed-test
	OTELKIT_SDK_FALLBACKS=1 $(BIN)/python -m pytest

$(OLDEST_VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-e '.[test]' $(OLDEST_PINS)
	touch $@

# The suite on the oldest supported OpenTelemetry releases, in a second environment.
test-oldest: $(OLDEST_VENV)/.installed-test
	$(OLDEST_VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) $(OLDEST_VENV) build dist
