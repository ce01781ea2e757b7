# make demo: the whole flow against real local servers. make test: every test.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
COLLECTION_LINK := .build/collections/ansible_collections/mailsec/mta_sts
# The release gates' console scripts call each other (ansible-lint runs ansible-playbook) by name.
VENV_PATH := PATH="$(abspath $(VENV))/bin:$$PATH"
# Building the tarball needs ansible-core only: a small venv of its own, no root, no lab.
BUILD_VENV := .build/venv-build
BUILD_REQUIREMENT := ansible-core>=2.16
# meta/runtime.yml claims requires_ansible >=2.16.0: sanity runs on the oldest claimed release too.
OLDEST_CORE_VENV := .build/venv-core-2.16
OLDEST_CORE_REQUIREMENT := ansible-core>=2.16,<2.17

.PHONY: deps test units integration postfix-tests dane-tests reports-tests rollout-tests lint changelog-lint docs-lint docsite sanity sanity-oldest demo bench build clean

deps:
	scripts/install-deps

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

# A venv with one requirement, remade when the Makefile (where the requirement is written) changes.
$(BUILD_VENV)/.installed $(OLDEST_CORE_VENV)/.installed: %/.installed: Makefile
	@python3 -c 'import ensurepip' 2>/dev/null || { \
	  echo "make: python3 -m venv needs ensurepip: on Debian, apt-get install python3-venv" >&2; exit 1; }
	python3 -m venv $*
	$*/bin/pip install -q --disable-pip-version-check '$(REQUIREMENT)'
	touch $@

$(BUILD_VENV)/.installed: REQUIREMENT = $(BUILD_REQUIREMENT)
$(OLDEST_CORE_VENV)/.installed: REQUIREMENT = $(OLDEST_CORE_REQUIREMENT)

test: deps $(COLLECTION_LINK) $(OLDEST_CORE_VENV)/.installed
	scripts/run-test-suites $(PYTHON)
	$(MAKE) --no-print-directory lint changelog-lint docs-lint sanity sanity-oldest DEPS_DONE=1

# Inside `make test`, deps ran already.
GATE_DEPS := $(if $(DEPS_DONE),,deps)

units: deps $(COLLECTION_LINK)
	$(PYTHON) -m pytest tests/unit

integration: deps $(COLLECTION_LINK)
	$(PYTHON) -m pytest tests/lab tests/integration

# The Postfix tests take 127.0.0.1:25, :53 and :443: each run in a network namespace of its own.
postfix-tests: deps $(COLLECTION_LINK)
	scripts/lab-netns $(PYTHON) -m pytest tests/postfix

# The DANE tests (issue 12): the same DNSSEC lab on 127.0.0.1:53 and MX hosts on port 25, the same namespace.
dane-tests: deps $(COLLECTION_LINK)
	scripts/lab-netns $(PYTHON) -m pytest tests/dane

# The TLS-RPT report tests: their Dovecot takes 127.0.0.1:993, so the same namespace.
reports-tests: deps $(COLLECTION_LINK)
	scripts/lab-netns $(PYTHON) -m pytest tests/reports

# The rollout playbooks (playbooks/) on Knot, nginx and lab MX hosts at fixed loopback addresses: the same namespace.
rollout-tests: deps $(COLLECTION_LINK)
	scripts/lab-netns $(PYTHON) -m pytest tests/rollout

# The playbooks' syntax check resolves this collection's modules (module_defaults) through the checkout's link.
lint: $(GATE_DEPS) $(COLLECTION_LINK)
	@$(VENV_PATH) ANSIBLE_COLLECTIONS_PATH=$(abspath .build/collections) $(VENV)/bin/ansible-lint || { \
	  echo "make lint: ansible-lint --profile production failed on the violations above (settings: .ansible-lint)" >&2; exit 1; }

changelog-lint: $(GATE_DEPS)
	@$(VENV)/bin/antsibull-changelog lint || { \
	  echo "make changelog-lint: a fragment in changelogs/fragments is not valid (see above)" >&2; exit 1; }

docs-lint: $(GATE_DEPS)
	@$(PYTHON) scripts/docsite.py --check
	@$(VENV_PATH) $(VENV)/bin/antsibull-docs lint-collection-docs --plugin-docs . || { \
	  echo "make docs-lint: plugin documentation or docs/docsite failed antsibull-docs' checks (see above)" >&2; exit 1; }

sanity: $(GATE_DEPS)
	tests/sanity/run

sanity-oldest: $(GATE_DEPS) $(OLDEST_CORE_VENV)/.installed
	VENV=$(OLDEST_CORE_VENV) SANITY_ROOT=$${TMPDIR:-/tmp}/mailsec-mta_sts-sanity-2.16 tests/sanity/run

# The docs site's pages (docs/docsite/rst) from docs/*.md.
docsite:
	python3 scripts/docsite.py

demo: deps $(COLLECTION_LINK)
	scripts/demo

# checkdmarc, measured beside the validator, in a venv of its own (its pins are not ours).
CHECKDMARC_VENV := .build/checkdmarc-venv

$(CHECKDMARC_VENV)/.installed:
	python3 -m venv $(CHECKDMARC_VENV)
	$(CHECKDMARC_VENV)/bin/pip install -q --disable-pip-version-check 'checkdmarc==6.0.4'
	touch $@

# parsedmarc, measured beside the TLS-RPT report reader, likewise in a venv of its own.
PARSEDMARC_VENV := .build/parsedmarc-venv

$(PARSEDMARC_VENV)/.installed:
	python3 -m venv $(PARSEDMARC_VENV)
	$(PARSEDMARC_VENV)/bin/pip install -q --disable-pip-version-check 'parsedmarc==11.1.0'
	touch $@

bench: deps $(COLLECTION_LINK) $(CHECKDMARC_VENV)/.installed $(PARSEDMARC_VENV)/.installed
	$(PYTHON) bench/record_updates.py
	$(PYTHON) bench/validate_bulk.py --domains 200 --delay-ms 20 --checkdmarc-venv $(CHECKDMARC_VENV)
	$(PYTHON) bench/policy_host.py --domains 10,100,1000 --template-max 100
	$(PYTHON) bench/tlsrpt_reports.py --counts 1000,5000,10000 --parsedmarc-venv $(PARSEDMARC_VENV)
	$(PYTHON) bench/api_budget.py

build: $(BUILD_VENV)/.installed
	$(BUILD_VENV)/bin/ansible-galaxy collection build --force --output-path .build/dist

clean:
	rm -rf .build tests/output
