# The two commands of the README are `make demo` and `make test`; everything else is a step of theirs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
COLLECTION_LINK := .collections/ansible_collections/claude_flow/runbook
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: demo demo-alerts test deps venv collection unit lint sanity lab-up lab-down bench bench-smoke clean

deps:
	@bash tests/lab/ensure-deps.sh

$(VENV)/.stamp: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
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

clean:
	rm -rf $(VENV) .collections build tests/output

bench: venv
	bash bench/run.sh

lab-up: venv
	$(BIN)/python tests/lab/lab.py up --hosts 5

lab-down:
	$(PYTHON) tests/lab/lab.py down

demo: venv
	bash tests/lab/demo.sh

# The closed loop on three lab hosts: exporter -> Prometheus -> Alertmanager -> ansible-rulebook -> response.
# MONITORING_PROFILE=default uses the production intervals (several minutes).
demo-alerts: venv
	$(BIN)/python tests/monitoring/demo_alerts.py --profile $(or $(MONITORING_PROFILE),tight)
