# Two commands on a fresh machine with Python 3.11+:
#   make demo   create .venv, install, seed demo data, serve on http://127.0.0.1:8000
#   make test   create .venv, install with test extras, run the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: demo test install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# axe-core (accessibility checks in the browser tests), from the npm registry
	command -v npm >/dev/null && npm install --prefix $(VENV)/npm axe-core@4 --no-audit --no-fund --silent || true
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cloudseat serve --demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var
