# Two commands do all the set-up themselves: `make synth` and `make test`. Needs python3 (3.11+), node (20+) and npm.
SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
CDK := node_modules/.bin/cdk

# Node 20's end-of-life banner, CDK telemetry and the EC2 metadata probe are noise on a machine without AWS.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup synth test lint bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The CDK CLI is pinned in package.json / package-lock.json: aws-cdk@latest is an incompatible 3.0.0.
node_modules/.installed: package.json package-lock.json
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
	rm -rf $(VENV) node_modules cdk.out .mypy_cache .ruff_cache .pytest_cache

# Writes BENCHMARKS.md: ours side by side with AwsCustomResource. Not part of `make test`: timings are not tests.
bench: setup
	$(PYTHON) benchmarks/run.py
