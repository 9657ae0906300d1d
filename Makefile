# stacks-token-metadata: `make run` starts everything, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install run test test-fast lint typecheck check clean vendor-swagger-ui

install: $(STAMP)

# Re-installs only when the project definition changes.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	@deploy/run-local.sh

test: install
	$(PY) -m pytest

# Unit and integration tests only (no process-level e2e): the quick loop while working.
test-fast: install
	$(PY) -m pytest tests/unit tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .run

# Swagger UI's files, served by the API at /metadata/v1/swagger-ui/<version>/ (api/swagger_ui.py):
# `make vendor-swagger-ui SWAGGER_UI_VERSION=x.y.z` replaces them with that swagger-ui-dist release.
SWAGGER_UI_VERSION ?= 5.35.0
SWAGGER_UI_FILES := swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt \
	swagger-ui-standalone-preset.js swagger-ui-standalone-preset.js.LICENSE.txt \
	swagger-ui.css LICENSE NOTICE package.json

vendor-swagger-ui:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent swagger-ui-dist@$(SWAGGER_UI_VERSION) >/dev/null && \
	 tar xzf swagger-ui-dist-$(SWAGGER_UI_VERSION).tgz) && \
	rm -rf api/static/swagger-ui && mkdir -p api/static/swagger-ui && \
	for f in $(SWAGGER_UI_FILES); do cp "$$tmp/package/$$f" api/static/swagger-ui/; done
