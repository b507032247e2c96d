# The two commands of the README are `make demo` and `make test`; everything else is a step of theirs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTION_LINK := .collections/ansible_collections/claude_flow/runbook
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo demo-alerts test deps venv collection unit lint sanity environments newcomer lab-up lab-down bench bench-smoke clean real-cli capture-release readmes

deps:
	@bash tests/lab/ensure-deps.sh

# The developers' toolchain (requirements-dev.txt); requirements.txt is what the collection itself
# needs on a controller (tests/newcomer checks a venv with only that).
$(VENV)/.stamp: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: deps $(VENV)/.stamp collection

# The checkout is the collection: link it where ansible looks for claude_flow.runbook.
collection: $(COLLECTION_LINK)
$(COLLECTION_LINK):
	mkdir -p $(dir $(COLLECTION_LINK))
	ln -sfn ../../.. $(COLLECTION_LINK)

unit: venv
	$(BIN)/python -m pytest -p no:cacheprovider tests/unit

test: venv
	bash tests/run-all.sh

lint: venv
	bash tests/ci/lint.sh

# Each role's README.md from its meta/argument_specs.yml (tests/unit/test_role_readmes.py fails when one is stale).
readmes:
	$(BIN)/python tests/ci/role_readmes.py

sanity: venv
	bash tests/ci/sanity.sh

# ansible-builder create for execution-environment.yml and decision-environment.yml.
environments: venv
	bash tests/ci/environments.sh

# The README's "Use it on your hosts" through the built tarball on one lab host (root).
newcomer: venv
	bash tests/newcomer/run.sh

clean:
	rm -rf $(VENV) .collections build tests/output

bench: venv
	bash bench/run.sh

bench-smoke: venv
	bash bench/run.sh --smoke

lab-up: venv
	$(BIN)/python tests/lab/lab.py up --hosts 5

lab-down:
	$(PYTHON) tests/lab/lab.py down

demo: venv
	bash tests/lab/demo.sh

# Real claude-flow releases (pinned in tests/lab/real-releases), installed once per machine into
# ~/.cache/claude-flow-runbook (keyed by release, Node version and platform) for the lab, the real-CLI tests and
# the benchmarks. Cold: a few minutes (npm + native builds); warm: instant.
real-cli:
	$(PYTHON) tests/lab/real_claude_flow.py install

# A new release: pin it, capture its outputs into tests/fixtures/claude-flow-reference (same names
# as the existing captures) and show what differs from the stand-in (exit 1 when something does).
#   make capture-release VERSION=3.44.0
capture-release:
	@test -n "$(VERSION)" || { echo "usage: make capture-release VERSION=x.y.z" >&2; exit 2; }
	@test -f tests/lab/real-releases/claude-flow-$(VERSION).package-lock.json || \
	  $(PYTHON) tests/lab/real_claude_flow.py lock $(VERSION)
	$(PYTHON) tests/lab/real_claude_flow.py capture $(VERSION)
	$(PYTHON) tests/lab/real_claude_flow.py compare $(VERSION)
# The closed loop on three lab hosts: exporter -> Prometheus -> Alertmanager -> ansible-rulebook -> response.
# MONITORING_PROFILE=default uses the production intervals (several minutes).
demo-alerts: venv
	$(BIN)/python tests/monitoring/demo_alerts.py --profile $(or $(MONITORING_PROFILE),tight)
