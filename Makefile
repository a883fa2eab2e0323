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

.PHONY: demo dashboard test lint typecheck docs pytest test-fallbacks test-oldest clean

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

test: lint typecheck docs pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# The documentation site (mkdocs.yml) into site/; --strict: a broken link or reference fails.
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

pytest: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# The tests of the code that has SDK shortcuts, with every shortcut forced off (their public
# fallbacks): the seam, export, relay, coalescing, the logging bridges.
SEAM_TESTS := tests/test_sdk_seam.py tests/export tests/relay tests/coalesce \
	tests/test_logbridge.py tests/bridges tests/test_batch.py tests/test_configure.py
test-fallbacks: $(VENV)/.installed-test
	OTELKIT_SDK_FALLBACKS=1 $(BIN)/python -m pytest $(SEAM_TESTS)

$(OLDEST_VENV)/.installed-test: pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-e '.[test]' $(OLDEST_PINS)
	touch $@

# The suite on the oldest supported OpenTelemetry releases, in a second environment (the
# slow process tests of jobs, task queues and servers run on the newest releases only).
test-oldest: $(OLDEST_VENV)/.installed-test
	$(OLDEST_VENV)/bin/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) $(OLDEST_VENV) build dist site
