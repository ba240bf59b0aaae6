# Two commands matter: `make preview` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install preview test lint docs benchmark-preview clean

install: $(STAMP)

# Re-installs only when the dependencies change; safe to run any number of times.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

preview: install
	$(BIN)/aip preview --stack dev

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

docs: install
	$(BIN)/aip docs

benchmark-preview: install
	$(BIN)/python benchmarks/preview.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
