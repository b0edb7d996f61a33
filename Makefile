# The two commands of the quick start: `make run` (the pipeline end to end) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export BENTOML_DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export ITERATIVE_DO_NOT_TRACK := 1
export TF_CPP_MIN_LOG_LEVEL := 2

UV_VERSION := 0.13.9
# uv from PATH, else a private copy bootstrapped from PyPI into .uv/ (needs only python3 -m venv).
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.uv/bin/uv)
# Tests run uv themselves (temp copies of the project, act): the same uv, first on PATH.
export PATH := $(dir $(UV)):$(PATH)

.PHONY: help uv env env-all run serve test test-tools lint bench

help:
	@echo "make run    install the locked environment, get the data, run the pipeline, summarize"
	@echo "make serve  serve the packaged model on 127.0.0.1:3000"
	@echo "make test   install the environment with every model family and run the test suite"
	@echo "make test-tools  install what the tests run besides Python (apt and npm, as root)"
	@echo "make lint   ruff, zizmor and the workflow schemas"

$(CURDIR)/.uv/bin/uv:
	python3 -m venv .uv
	.uv/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

uv: $(UV)

# --compile-bytecode: every `mlops`, `dvc` and `bentoml` process then reads compiled modules
# (importing TensorFlow took 20 s of CPU without them, 6-7 s with), also where the environment
# sets PYTHONDONTWRITEBYTECODE; compiling once costs ~80 CPU-s.
env: uv  ## only the extra of the family params.yaml chooses; an unknown family installs nothing
	flags="$$(python3 src/mlops_template/envspec.py)" && $(UV) sync --locked --compile-bytecode $$flags

env-all: uv  ## every model family's extra: what the tests need
	flags="$$(python3 src/mlops_template/envspec.py --all)" && $(UV) sync --locked --compile-bytecode $$flags

run: env
	$(UV) run mlops data
	$(UV) run mlops train --check
	$(UV) run dvc repro || { $(UV) run mlops summary --after-failure; exit 1; }
	$(UV) run mlops summary
	@echo "== the change bounds, against the last commit's model =="
	$(UV) run mlops gate --baseline HEAD --out build/gate-vs-head.json

serve: env  ## the packaged model of this checkout, on 127.0.0.1:3000
	BENTOML_HOME=$(CURDIR)/.bentoml $(UV) run bentoml serve --host 127.0.0.1 --port 3000

# What the tests run besides Python: promtool and Prometheus (the alert rules, a real scrape),
# Chromium and the locked Mermaid library (the report's charts), podman, buildah, runc and
# debootstrap (the release image, built and run without Docker) with its local base image, built
# once (about 2.5 min; reused when present). Debian/Ubuntu, as root.
SYSTEM_TEST_PACKAGES := prometheus chromium podman buildah runc debootstrap
test-tools: uv
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_TEST_PACKAGES)
	npm ci --prefix tests/mermaid --no-audit --no-fund
	bash tools/build-test-base-image.sh

test: env-all  ## two workers; a file's tests stay on one worker (its module fixtures are built once)
	$(UV) run pytest -n 2 --dist loadfile --durations=30

lint: env-all
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run zizmor --offline --persona pedantic .
	$(UV) run check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(UV) run check-jsonschema --builtin-schema vendor.github-actions actions/*/action.yml
