# Two commands on a fresh machine with Python 3.11+:
#   make demo   create .venv, install (no test extras), seed demo data, serve on http://127.0.0.1:8000
#   make test   create .venv, install with test extras, run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SUM := $(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-run-$(SUM)
TEST_STAMP := $(VENV)/.installed-test-$(SUM)

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What the server needs, nothing more: a newcomer's `make demo` downloads no test tools.
$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	rm -f $(VENV)/.installed-run-*
	touch $@

$(TEST_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# axe-core (accessibility checks in the browser tests), from the npm registry
	command -v npm >/dev/null && npm install --prefix $(VENV)/npm axe-core@4 --no-audit --no-fund --silent || true
	rm -f $(VENV)/.installed-test-* $(VENV)/.installed-run-*
	touch $@ $(RUN_STAMP)

install: $(TEST_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/cloudseat serve --demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
