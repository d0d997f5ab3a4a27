# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# sslyze (the e2e tests' judge of the TLS front) in a venv of its own: it needs an older cryptography.
SSLYZE := .venv-sslyze/bin/sslyze
# The Pythons locks are made for; a set that cannot run on one (JupyterHub 6 on 3.9) gets no lock for it.
SERVER_PYTHONS := 3.9 3.10 3.11 3.12 3.13

# The hub package's tests run in a venv of the server lock (JupyterHub 6) for this Python.
HUB_VENV := .venv-hub
HUB_LOCK := files/server/jupyterhub-6/py$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])').txt

.PHONY: venv demo demo-down test lint unit unit-deploy unit-hub e2e bench bench-cluster bench-class bench-monitoring locks docs \
	prerequisites prerequisites-unit

$(BIN)/pyinfra: requirements.txt | prerequisites-unit
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(SSLYZE): tests/requirements-sslyze.txt
	$(PYTHON) -m venv .venv-sslyze
	.venv-sslyze/bin/pip install -q -r tests/requirements-sslyze.txt
	touch $@

$(HUB_VENV)/bin/coverage: $(HUB_LOCK) hubside/tests/requirements.txt | $(BIN)/pyinfra
	$(BIN)/uv venv -q --allow-existing --python $(PYTHON) $(HUB_VENV)
	$(BIN)/uv pip install -q --python $(HUB_VENV)/bin/python -r $(HUB_LOCK) -r hubside/tests/requirements.txt
	touch $@

venv: $(BIN)/pyinfra $(SSLYZE) $(HUB_VENV)/bin/coverage

prerequisites:
	bash tests/prerequisites.sh

prerequisites-unit:
	bash tests/prerequisites.sh unit

## Start a local Ubuntu 24.04 container and deploy the hub to it (its inventory: .demo/inventory.py).
demo: $(BIN)/pyinfra prerequisites
	$(BIN)/python -m tests.harness demo up
	$(BIN)/pyinfra -y .demo/inventory.py deploy.py
	$(BIN)/python -m tests.harness demo info

## Remove the demo container.
demo-down: $(BIN)/pyinfra
	$(BIN)/python -m tests.harness demo down

## Every test: lint, unit tests, then end-to-end tests on real targets.
test: $(BIN)/pyinfra $(SSLYZE) prerequisites
	bash tests/lint.sh
	$(MAKE) unit
	bash tests/e2e.sh

## ruff (format check and lint) and shellcheck over the repository.
lint: $(BIN)/pyinfra
	bash tests/lint.sh

## The fast tests: the deploy's (tests/unit), then the hub package's with its coverage (hubside/tests).
unit: unit-deploy unit-hub

unit-deploy: $(BIN)/pyinfra
	$(BIN)/pytest tests/unit

unit-hub: $(HUB_VENV)/bin/coverage
	cd hubside && ../$(HUB_VENV)/bin/coverage run -m pytest && ../$(HUB_VENV)/bin/coverage report

e2e: $(BIN)/pyinfra $(SSLYZE) prerequisites
	bash tests/e2e.sh

## Speed figures as ratios against baselines of the same run (not part of `make test`; ~15 min).
bench: $(BIN)/pyinfra prerequisites
	$(BIN)/python -m tests.bench.run

## The cluster deploy's fan-out: a hub with 1 node against a hub with 8 (docs/design.md: Speed).
bench-cluster: $(BIN)/pyinfra prerequisites
	$(BIN)/python -m tests.bench.cluster

## A class of 50 and of 100 arriving at once, in turn and all at once (~40 min).
bench-class: $(BIN)/pyinfra prerequisites
	$(BIN)/python -m tests.bench.class_arrives

## What jh_monitoring adds: cold deploys without and with it (ABBA), its daemons' memory under a class of 50 (~20 min).
bench-monitoring: $(BIN)/pyinfra prerequisites
	$(BIN)/python -m tests.bench.monitoring

## Write docs/settings.md from the settings model (tasks/settings/); a unit test fails while it is stale.
docs: $(BIN)/pyinfra
	$(BIN)/python -m tasks.settings.reference

## Re-resolve the locks after editing a requirements.in of files/server/ or files/kernels/.
locks: $(BIN)/pyinfra
	for set in files/server/*/ files/kernels/*/; do for py in $(SERVER_PYTHONS); do \
	  $(BIN)/uv pip compile -q --python-version $$py --python-platform x86_64-manylinux_2_28 \
	    --no-header --no-annotate --overrides files/lock-overrides.txt $${set}requirements.in -o $${set}py$$py.txt 2>/dev/null \
	  || { rm -f $${set}py$$py.txt; echo "$${set}: no lock for Python $$py (unsatisfiable there)"; }; done; done
	cd files/proxy && npm install --package-lock-only --omit-lockfile-registry-resolved --ignore-scripts
