# vpp-fabric: everything a newcomer runs goes through these targets.
# Python lives in .venv (pinned by requirements.lock); Fabric binaries in .fabric/bin.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
AGGS   ?=
LAYOUT ?=

.PHONY: help setup network-up network-down network-clean network-status network-add-aggregator demo test test-unit test-hosts lint format bench

help:
	@echo "make demo            bring the network up and run the paper's case study (first trade)"
	@echo "make test            unit + integration tests (starts the network if it is not running)"
	@echo "make network-up      build Fabric (first time) and start the network [AGGS=6] [LAYOUT=hosts]"
	@echo "make network-status  processes, channel heights, committed chaincode"
	@echo "make network-down    stop what network-up started (ledgers are kept)"
	@echo "make network-clean   stop and delete all network state"
	@echo "make network-add-aggregator N=7 [REGION=R2]  admit aggregator N to the running network"
	@echo "make test-hosts      the hosts layout (root): up, paper demo, no shared 127.0.0.1"
	@echo "make bench           benchmarks on throwaway networks (~11 min); docs/benchmarks.md"

# A new package folder (its __init__.py) needs a reinstall: the editable install
# only maps the packages that existed when it ran.
PACKAGES := $(wildcard chaincode/*/__init__.py client/*/__init__.py cli/*/__init__.py network/*/__init__.py)

$(VENV)/.installed: pyproject.toml requirements.lock $(PACKAGES)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

network-up: setup
	$(PY) -m vpp_network up $(if $(AGGS),--aggs $(AGGS)) $(if $(LAYOUT),--layout $(LAYOUT))

network-down: setup
	$(PY) -m vpp_network down

network-clean: setup
	$(PY) -m vpp_network clean

network-status: setup
	$(PY) -m vpp_network status

# Every step of the admission (docs/deployment.md, "Admitting an aggregator"); resumable.
network-add-aggregator: setup
	@test -n "$(N)" || { echo "usage: make network-add-aggregator N=<next number> [REGION=R<N>]"; exit 2; }
	$(VENV)/bin/vppctl network add-aggregator $(N) $(if $(REGION),--region $(REGION))

demo: network-up
	$(VENV)/bin/vppctl demo paper

test: setup
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

# The hosts layout (docs/deployment.md) needs root, so it is not part of `make test`. It
# runs its own network in .fabric/hosts-test (the one network-up made is not touched;
# run only one network at a time) and removes its namespaces when done.
test-hosts: setup
	VPP_HOME=$(CURDIR)/.fabric/hosts-test VPP_LAYOUT=hosts $(PY) -m pytest tests/hosts -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Creates and removes its own networks (.fabric/bench*, ports +13000/+21000), so it
# neither needs nor disturbs the one network-up runs. BENCH_ARGS: see run_all.py --help.
bench: setup
	$(PY) tests/bench/run_all.py $(BENCH_ARGS)
