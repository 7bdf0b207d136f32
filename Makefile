# The two commands of the README's quick start:
#   make generate   set up .venv and generate the default scenario (region) into runs/region
#   make test       set up .venv with the test extras and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SCENARIO ?= region

.PHONY: generate test benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

generate: $(VENV)/.installed
	$(BIN)/synthmob generate $(SCENARIO) --overwrite

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

benchmark: $(VENV)/.installed
	$(BIN)/python benchmarks/generate.py

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
