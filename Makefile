# The two front-door commands: `make run` and `make test`. Both build .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= scenarios/rfc2006-schemes.yaml
OUT ?= results/rfc2006-schemes

.PHONY: run test test-fast lint types wheel-check validate-real venv bench clean

$(BIN)/.stamp-run: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(BIN)/.stamp-test: $(BIN)/.stamp-run requirements-test.txt
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

venv: $(BIN)/.stamp-run

run: $(BIN)/.stamp-run
	$(BIN)/netns-sim run $(SCENARIO) --out $(OUT) --force
	@if $(BIN)/netns-sim report --help >/dev/null 2>&1; then $(BIN)/netns-sim report $(OUT); fi

# Lint and types first (seconds), then the suite, then the installed-wheel check (about a minute).
test: lint types
	$(BIN)/python -m pytest -q
	$(MAKE) wheel-check

# Inner loop: lint and the tests not marked slow (see [tool.pytest.ini_options] markers).
test-fast: lint
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(BIN)/.stamp-test
	$(BIN)/ruff check sim analysis

types: $(BIN)/.stamp-test
	$(BIN)/mypy sim analysis

# Build the wheel, install it with [dask] into a fresh temporary venv (pins as constraints)
# and run the front-door commands from outside the checkout (.ci/wheel-check).
wheel-check:
	PY=$(PY) .ci/wheel-check

# Real-kernel timing checks (root, iproute2): never part of `make test`, whose results must
# not depend on how loaded the machine is.
validate-real: $(BIN)/.stamp-test
	$(BIN)/python -m pytest -q -m kernel_timing tests/test_calibrate_real.py

bench: $(BIN)/.stamp-test
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) results .pytest_cache
