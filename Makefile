# make demo: the whole flow against real local servers. make test: every test.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
COLLECTION_LINK := .build/collections/ansible_collections/mailsec/mta_sts

.PHONY: deps test units integration sanity demo bench build clean

deps:
	scripts/install-deps

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

test: deps $(COLLECTION_LINK)
	$(PYTHON) -m pytest
	tests/sanity/run

units: deps $(COLLECTION_LINK)
	$(PYTHON) -m pytest tests/unit

integration: deps $(COLLECTION_LINK)
	$(PYTHON) -m pytest tests/lab tests/integration

sanity: deps
	tests/sanity/run

demo: deps $(COLLECTION_LINK)
	scripts/demo

bench: deps $(COLLECTION_LINK)
	$(PYTHON) bench/record_updates.py

build: deps
	$(VENV)/bin/ansible-galaxy collection build --force --output-path .build/dist

clean:
	rm -rf .build tests/output
