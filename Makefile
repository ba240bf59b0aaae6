# Two commands matter: `make preview` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install preview test gate lint docs benchmark-preview clean

install: $(STAMP)

# Re-installs only when the dependencies change; safe to run any number of times.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	# torch first, from its pinned CPU wheel, so nothing else pulls a CUDA build.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[serving,dev]'
	$(BIN)/python -m pip check
	command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; }
	touch $(STAMP)

preview: install
	$(BIN)/aip preview --stack dev

test: install
	$(BIN)/python -m pytest

# The offline policy gate of every stack, as CI runs it: SARIF per stack, fails on a mandatory violation.
gate: install
	mkdir -p build/policy
	set -e; for file in stacks/Pulumi.*.yaml; do \
	  stack=$${file#stacks/Pulumi.}; stack=$${stack%.yaml}; \
	  $(BIN)/aip preview --stack $$stack --format sarif > build/policy/$$stack.sarif; \
	done

lint: install
	$(BIN)/ruff check .

docs: install
	$(BIN)/aip docs

benchmark-preview: install
	$(BIN)/python benchmarks/preview.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
