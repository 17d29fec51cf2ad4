# golem.vm: everything runs through these targets; see README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)
PY311 ?= $(firstword $(wildcard $(PYENV_ROOT)/versions/3.11.7/bin/python) $(shell command -v python3.11))
PY312 ?= $(PYENV_ROOT)/versions/3.12.1/bin/python
CORE311 ?= ansible-core>=2.19,<2.20
CORE312 ?= ansible-core>=2.21,<2.22
VENV ?= .venv/py311
COLLECTIONS := $(CURDIR)/.venv/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
# The local network's loopback /16 (127.0 by default); another value runs a second network beside it.
export GOLEM_DEVNET_NET ?= 127.0
export GOLEM_REQUESTOR_DISCOVERY_URL ?= http://$(GOLEM_DEVNET_NET).0.1:9001
# The modules find providers on Golem Base by default: the local network's node, never the public one.
export GOLEM_REQUESTOR_GOLEM_BASE_RPC_URL ?= http://$(GOLEM_DEVNET_NET).0.13:8545/rpc
export ANSIBLE_FORCE_COLOR ?= 0
PYTEST_ARGS ?=

.PHONY: help install install-system install-tools install-devnet collection devnet-up devnet-down \
        devnet-status demo test sanity units integration test-leg clean bench bench-inventory bench-fleet \
        bench-inventory-pg bench-payments bench-discovery bench-identity bench-heal docs

help:
	@echo "make demo         set up everything, start the local network, run playbooks/create_vm.yml"
	@echo "make test         everything CI checks (sanity, unit, integration; both toolchain legs)"
	@echo "make devnet-up    start the local Golem network (devnet-down stops it, devnet-status shows it)"
	@echo "make docs         build the docs site (antsibull-docs + Sphinx, offline) into .venv/docs/html"

install: install-system install-tools install-devnet collection

install-system:
	@bash scripts/install-system.sh

install-tools:
	@bash scripts/install-tools.sh py311 "$(PY311)" '$(CORE311)'
	@bash scripts/install-tools.sh py312 "$(PY312)" '$(CORE312)'

install-devnet: install-system
	@bash scripts/install-devnet.sh

# The integration tests and the demo use the collection as users get it: built and installed.
collection: install-tools
	@rm -rf .venv/dist "$(COLLECTIONS)/ansible_collections/golem/vm"
	@$(VENV)/bin/ansible-galaxy collection build -v --output-path .venv/dist . >/dev/null
	@$(VENV)/bin/ansible-galaxy collection install --offline -p "$(COLLECTIONS)" .venv/dist/golem-vm-*.tar.gz >/dev/null
	@echo "collection: golem.vm installed in $(COLLECTIONS)"

# The docs site of the collection as built and installed, offline; see scripts/build-docs.sh.
docs: install-tools
	@bash scripts/build-docs.sh $(VENV) .venv/docs

devnet-up: install-devnet install-tools
	@$(VENV)/bin/python devnet/ctl.py up

devnet-down:
	@if [ -x $(VENV)/bin/python ]; then $(VENV)/bin/python devnet/ctl.py down; \
	 else echo "devnet: not installed"; fi

devnet-status:
	@$(VENV)/bin/python devnet/ctl.py status

# The demo keeps its own state file, so the local network's VMs never mix with real ones.
DEMO_STATE ?= $(CURDIR)/.devnet/requestor/vms.db
DEMO_ARGS ?= -e vm_install_packages=false

# The local network's funded account and chain come from its env file: the demo pays for its VM.
demo: install devnet-up
	@set -a && . .devnet/env && set +a && cd playbooks && \
	 GOLEM_REQUESTOR_DB_PATH="$(DEMO_STATE)" ../$(VENV)/bin/ansible-playbook create_vm.yml $(DEMO_ARGS)

bench:
	@cd bench && ../$(VENV)/bin/python golem_vm_noop.py

# ~17 min a leg at 10,000 hosts; e.g. BENCH_ARGS="--hosts 2000 --runs 3". Exits 1 if the target is missed.
bench-inventory:
	@$(VENV)/bin/python bench/inventory_bench.py $(BENCH_ARGS)

# ansible-inventory --list of 10,000 VMs from PostgreSQL vs SQLite (needs make devnet-up). Exits 1 if over 1.2x.
bench-inventory-pg:
	@$(VENV)/bin/python bench/inventory_pg_bench.py $(BENCH_ARGS)

# fleet.yml creating 20 VMs against plain parallel HTTP; e.g. BENCH_ARGS="5 20" (rounds, VMs). Exits 1 if the target is missed.
bench-fleet:
	@$(VENV)/bin/python bench/fleet_bench.py $(BENCH_ARGS)

# golem_vm creating on the paying SE provider vs the same create given a stream_id (median of 5, interleaved);
# e.g. BENCH_ARGS="7" (rounds). Exits 1 if paying costs more than one block time + 0.5 s.
bench-heal:
	@cd bench && ../$(VENV)/bin/python heal_bench.py $(BENCH_ARGS)

bench-payments:
	@cd bench && ../$(VENV)/bin/python payment_bench.py $(BENCH_ARGS)

# golem_provider_info on Golem Base vs central vs the upstream CLI among 50 adverts; e.g. BENCH_ARGS="5 50"
# (rounds, adverts). Exits 1 if the target is missed.
bench-discovery:
	@$(VENV)/bin/python bench/discovery_bench.py $(BENCH_ARGS)

# What the identity proof adds to a task that found a 404 (GET /provider/info; discovery's advert for the MVP era),
# in ms, median of 30 in-process; e.g. BENCH_ARGS="50" (rounds). Needs make devnet-up.
bench-identity:
	@cd bench && ../$(VENV)/bin/python identity_bench.py $(BENCH_ARGS)

# One leg: sanity, units, integration for the toolchain in VENV.
sanity:
	@bash scripts/ansible-test-offline.sh $(VENV) $(shell $(VENV)/bin/python -c 'import sys;print("%d.%d"%sys.version_info[:2])') sanity

units:
	@$(VENV)/bin/python -m pytest tests/unit -p no:cacheprovider -q $(PYTEST_ARGS)

# What the second toolchain leg of `make test` runs: the tests whose outcome depends on Python and ansible-core
# (modules, the inventory plugin, playbooks, ansible-runner as AWX uses it, ansible-doc and the docs site). The
# first leg runs every integration test; two full legs do not fit CI's time limit on 2 cores.
SMOKE_INTEGRATION := $(addprefix tests/integration/,test_golem_vm.py test_inventory.py test_playbooks.py \
                     test_awx.py test_golem_vm_info.py test_bad_input.py test_publish.py)
INTEGRATION_TESTS ?= tests/integration

integration:
	@$(VENV)/bin/python -m pytest $(INTEGRATION_TESTS) -p no:cacheprovider -q $(PYTEST_ARGS)

test-leg: sanity units integration

test: install devnet-up
	@status=0; \
	for leg in py311 py312; do \
	  started=$$(date +%s); \
	  tests=tests/integration; [ $$leg = py311 ] || tests="$(SMOKE_INTEGRATION)"; \
	  echo "=== leg $$leg: ansible-core $$(.venv/$$leg/bin/python -c "import ansible.release as r; print(r.__version__)") on $$(.venv/$$leg/bin/python -V)"; \
	  $(MAKE) --no-print-directory test-leg VENV=.venv/$$leg INTEGRATION_TESTS="$$tests" || { status=1; break; }; \
	  echo "=== leg $$leg passed in $$(( $$(date +%s) - started )) s"; \
	done; \
	$(MAKE) --no-print-directory devnet-down || status=1; \
	exit $$status

clean: devnet-down
	rm -rf .venv/dist .venv/docs .venv/ansible-test collections tests/output
