# Stackwright: `make aio` deploys the all-in-one lab cloud, `make test` runs the test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

INVENTORY ?= inventory/lab-aio
VENV ?= .venv
# The deploy host needs Python >= 3.12 (ansible-core 2.21); the first one found wins.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$p; break; }; done)
SCENARIOS ?= infra aio
# Tempest selection for `make tempest` (smoke, full or a regular expression); `make aio` runs it at the end when set.
TEMPEST ?=
# The selection goes to Ansible as JSON: Ansible decodes backslash escapes in key=value extra vars (a regex's \b would
# reach Tempest as a backspace). The value is single-quoted for the shell as typed ($(value): make leaves a $ alone).
TEMPEST_ARGS = -e "$$(python3 -c 'import json, sys; print(json.dumps({"tempest_selection": sys.argv[1] or "smoke"}))' \
	'$(subst ','\'',$(value TEMPEST))')"

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
COLLECTION := collections/ansible_collections/stackwright/cloud
# antsibull-changelog has a venv of its own in the cache: the deploy host's venv does not need it. It gets the pins of
# ansible-test's changelog sanity test (antsibull-changelog 0.29.0 with ansible-core 2.21), so both lint alike, and is
# rebuilt when those pins change (another ansible-core), not for each new clone.
CHANGELOG_VENV := $(or $(STACKWRIGHT_CACHE),$(HOME)/.cache/stackwright)/antsibull-changelog
CHANGELOG_PINS = $$($(VENV)/bin/python -c 'import ansible_test, pathlib; \
	print(pathlib.Path(ansible_test.__file__).parent / "_data/requirements/sanity.changelog.txt")')
VENV_PYTHON_VERSION = $$($(CURDIR)/$(VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= false
export PY_COLORS ?= 0

.PHONY: help deps venv lab secrets site aio tempest bench verify day2 day2-scenario guest-image destroy lint unit changelog changelog-venv molecule test clean-cache

help:
	@echo "make aio        set up this machine and deploy the all-in-one lab cloud"
	@echo "make test       lint, unit tests and Molecule scenarios ($(SCENARIOS))"
	@echo "make tempest    run Tempest (TEMPEST=smoke by default, or full, or a regex) against the lab of INVENTORY"
	@echo "make bench      time the deploys (destroys and redeploys the labs; BENCH_ARGS=\"--parts ...\", docs/benchmarks.md)"
	@echo "make verify     run the cloud checks of the aio scenario against the deployed lab of INVENTORY"
	@echo "make day2       run the day-2 playbooks (key rotation, backup and restore, Galera recovery, health) against that lab"
	@echo "make day2-scenario  the Molecule day2 scenario: its own multinode lab, deployed, day-2 tests, destroyed (not in make test)"
	@echo "make destroy    remove the lab hosts of INVENTORY (default $(INVENTORY))"
	@echo "make guest-image  build the test servers' guest image (docs/guest-image.md)"
	@echo "make changelog  lint the collection's changelog fragments and write its CHANGELOG.md from them"
	@echo "make lab | secrets | site | lint | unit | molecule    single steps"

deps:
	@scripts/install-deploy-host-deps

$(VENV)/.stamp: requirements.txt
	@test -n "$(PYTHON)" || { echo "No Python >= 3.12 found: install python3.12 or newer, or pass PYTHON=/path/to/python3"; exit 1; }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

venv: deps $(VENV)/.stamp

lab: venv
	ansible-playbook -i $(INVENTORY) playbooks/lab.yml

secrets: venv
	$(VENV)/bin/python scripts/generate-secrets $(INVENTORY)

site: venv
	ansible-playbook -i $(INVENTORY) playbooks/site.yml

aio: lab secrets site
	@$(if $(TEMPEST),$(MAKE) --no-print-directory tempest)
	@$(VENV)/bin/python scripts/lab-summary $(INVENTORY)

tempest: venv
	ansible-playbook -i $(INVENTORY) playbooks/tempest.yml $(TEMPEST_ARGS)

# Deploy times of the lab (cold, warm, no-op, install floor, add-compute, 1 vs N computes) as JSON in artifacts/bench/.
bench: venv
	$(VENV)/bin/python scripts/bench --inventory $(INVENTORY) $(BENCH_ARGS)

# The aio scenario's checks against any deployed lab (multinode too); lab name from the inventory.
VERIFY_TESTS ?= molecule/aio/tests
verify: venv
	@lab=$$(ansible-inventory -i $(INVENTORY) --host $$(ansible-inventory -i $(INVENTORY) --list | \
		python3 -c 'import json,sys; print(sorted(json.load(sys.stdin)["_meta"]["hostvars"])[0])') | \
		python3 -c 'import json,sys; print(json.load(sys.stdin)["lab_name"])'); \
	state=$${STACKWRIGHT_CACHE:-$$HOME/.cache/stackwright}/labs/$$lab; \
	STACKWRIGHT_INVENTORY=$(CURDIR)/$(INVENTORY) STACKWRIGHT_LAB_STATE_DIR=$$state \
		pytest -p no:cacheprovider -q -rs --ssh-config=$$state/ssh_config $(VERIFY_TESTS)

# The day-2 playbooks against a deployed lab; they change the running cloud (and leave it working).
day2:
	@$(MAKE) --no-print-directory verify VERIFY_TESTS=molecule/day2/tests

destroy: venv
	ansible-playbook -i $(INVENTORY) playbooks/lab.yml -e lab_state=absent

lint: venv
	yamllint --strict .
	ruff check .
	shellcheck scripts/install-deploy-host-deps scripts/guest-image/* roles/lab/files/build-image.sh
	ansible-lint
	$(VENV)/bin/python scripts/ansible-test-pip-bootstrap
	@# ansible-test sees only the collections of its own root, and no files below a directory whose name starts with a
	@# dot: every sanity test runs on a copy of the collection, next to the openstack.cloud that the ansible package has.
	root=$$(mktemp -d) && trap 'rm -rf "$$root"' EXIT && \
	mkdir -p "$$root/ansible_collections/stackwright" "$$root/ansible_collections/openstack" && \
	cp -a $(COLLECTION) "$$root/ansible_collections/stackwright/cloud" && \
	rm -rf "$$root/ansible_collections/stackwright/cloud/tests/output" && \
	ln -s "$$($(VENV)/bin/python -c 'import ansible_collections.openstack.cloud as c; print(c.__path__[0])')" \
		"$$root/ansible_collections/openstack/cloud" && \
	cd "$$root/ansible_collections/stackwright/cloud" && ansible-test sanity --local --python $(VENV_PYTHON_VERSION)

unit: venv changelog-venv
	pytest -q -n auto --durations=15 tests
	cd $(COLLECTION) && ansible-test units --local --python $(VENV_PYTHON_VERSION)

changelog-venv: venv
	@pins="$(CHANGELOG_PINS)"; cmp -s "$$pins" $(CHANGELOG_VENV)/pins.txt || { \
		rm -rf $(CHANGELOG_VENV) && $(PYTHON) -m venv $(CHANGELOG_VENV) && \
		$(CHANGELOG_VENV)/bin/pip install --quiet --disable-pip-version-check -r "$$pins" && \
		cp "$$pins" $(CHANGELOG_VENV)/pins.txt; }

# The collection's CHANGELOG.md is antsibull-changelog's output, never edited by hand: this lints the fragments and
# writes it, previewing galaxy.yml's version until it is released (the release steps: the collection's README).
changelog: changelog-venv
	cd $(COLLECTION) && $(CHANGELOG_VENV)/bin/antsibull-changelog lint
	$(VENV)/bin/python scripts/collection-changelog --antsibull-changelog $(CHANGELOG_VENV)/bin/antsibull-changelog

# Molecule looks for a `default` scenario on every run and logs its absence as CRITICAL before it goes on; this
# project has none by design, so that line is dropped (everything else, and molecule's exit status, pass through).
molecule: venv
	@for s in $(SCENARIOS); do \
		molecule test -s $$s 2>&1 | grep --line-buffered -v "^CRITICAL 'molecule/default/molecule.yml' glob failed"; \
		[ "$${PIPESTATUS[0]}" -eq 0 ] || exit 1; \
	done

test: lint unit molecule

# The day2 scenario: a multinode lab of its own, site.yml, idempotence, the aio checks and the day-2 tests, then
# destroyed. Too heavy for `make test` (the deploy alone took 26 to 47 minutes on 2 cores).
day2-scenario:
	@$(MAKE) --no-print-directory molecule SCENARIOS=day2

# The small guest image for test servers, built offline from Debian packages (docs/guest-image.md).
guest-image: venv
	@scripts/build-guest-image
