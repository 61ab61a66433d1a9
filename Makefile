# Two commands on a fresh machine: `make study` (laptop study end to end, with its report) and
# `make test` (the whole test suite). Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
# The interpreter that creates .venv: Python 3.11 or newer (`make setup PYTHON=python3.11`, or its path).
PYTHON = python3
# Where pip takes torch from: empty is PyPI's build (CUDA 13: NVIDIA driver 580 or newer, Turing or newer);
# https://download.pytorch.org/whl/cu126 suits drivers from 560 and V100s (docs/cluster.md, "Which torch build").
TORCH_INDEX ?=
# The exact set `make setup` installs (Linux x86_64, Python 3.11); pyproject.toml holds the ranges.
LOCK := requirements.lock
PIP = $(BIN)/pip install --quiet --disable-pip-version-check
# The lock's lines of the CUDA 13 libraries PyPI's torch pulls in (nvidia-ml-py is not one of them).
TORCH_CUDA_LIBS := ^(cuda-|nvidia-(cu|nccl|nv))
CONFIG ?= config.yaml
STUDY = $(shell sed -n 's/^study: *//p' $(CONFIG))
export PATH := $(BIN):$(PATH)

.PHONY: setup system-deps study test test-fast bench gpu-check gpu-bundle ui mlflow-server clean lock

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "make: Python 3.11 or newer is needed to create $(VENV); PYTHON=$(PYTHON) is" \
			"$$(v=$$($(PYTHON) --version 2>&1) && echo "$$v" || echo 'not found')." >&2; \
		echo "  Name a newer one: make $(or $(MAKECMDGOALS),setup) PYTHON=python3.11 (or its path;" \
			"on a cluster, \`module load python/3.11\` first)" >&2; \
		echo "  None installed:   uv python install 3.11 (pip install uv), then" \
			"make $(or $(MAKECMDGOALS),setup) PYTHON=\"\$$(uv python find 3.11)\"" >&2; \
		echo "  or with conda:    conda create -n py311 -c conda-forge python=3.11, then" \
			"make $(or $(MAKECMDGOALS),setup) PYTHON=\"\$$(conda run -n py311 which python)\"" >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
	# The lock's exact set, PyPI's torch with it (a CUDA 13 build that also runs on CPU). With TORCH_INDEX, torch and
	# torchvision come from that index first with their own CUDA libraries, and the lock's CUDA 13 ones are left out.
	$(if $(TORCH_INDEX),$(PIP) $(shell grep -E '^torch(vision)?==' $(LOCK)) --index-url $(TORCH_INDEX))
	$(if $(TORCH_INDEX),grep -vE '$(TORCH_CUDA_LIBS)' $(LOCK),cat $(LOCK)) > $(VENV)/requirements.txt
	$(PIP) -r $(VENV)/requirements.txt
	# The package itself, editable; the lock holds all its dependencies ([workflow] and [test] included).
	$(PIP) --no-deps -e .
	touch $@

# requirements.lock from pyproject.toml's ranges and its [tool.uv] pins, by uv (`pip install uv`); versions
# already locked stay unless `make lock UPGRADE=--upgrade`. The command is the lock's first comment.
UV ?= uv
lock:
	$(UV) pip compile pyproject.toml --extra workflow --extra test --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o $(LOCK) $(UPGRADE)

setup: $(STAMP)

study: setup
	@start=$$(date +%s); \
	snakemake --cores $(CORES) --configfile $(CONFIG) && \
	snakemake --cores 1 --configfile $(CONFIG) --report results/$(STUDY)/snakemake-report.html && \
	echo "{\"study\": \"$(STUDY)\", \"cores\": $(CORES), \"seconds\": $$(( $$(date +%s) - start ))}" \
		> results/$(STUDY)/study_time.json && \
	echo "study $(STUDY) done in $$(( $$(date +%s) - start )) s: results/$(STUDY)/report.html"

# The Slurm tests start a real single-node cluster from Debian's packages, and the MLflow UI test
# drives Debian's Chromium (root only).
system-deps:
	@if ! PATH="$$PATH:/usr/sbin:/sbin" command -v slurmctld >/dev/null || ! PATH="$$PATH:/usr/sbin:/sbin" command -v munged >/dev/null || ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge chromium >/dev/null; \
		else echo "not root: Slurm, munge and Chromium not installed, the tests that need them will say so and skip"; fi; \
	fi

test: setup system-deps
	$(BIN)/python -m pytest

# The unit tier, for every commit: no Slurm, no browser, no whole study (about 4 minutes on 2 cores).
test-fast: setup
	$(BIN)/python -m pytest -m "not system"

# Speed figures, each a ratio measured side by side in one run: table on stdout, results/bench.json.
bench: setup
	$(BIN)/python -m benchmarks.run

# The paper's headline on one GPU in minutes (src/datadiet/tools/gpu_check.py: results/gpu-check.json). It runs as
# it comes on a bare GPU machine (python3 with torch, pandas and scipy; no torchvision, no .venv, no
# internet): `make gpu-bundle`, here, first puts what such a machine lacks in gpu-check/ (ignored): CIFAR-10
# decoded (cifar10.pt, 184 MB) and PyYAML. Without a GPU it says so and exits 0.
# PYTHON given on the command line wins; else .venv's python where there is one.
GPU_PYTHON = $(if $(filter command line,$(origin PYTHON)),$(PYTHON),$(if $(wildcard $(BIN)/python),$(BIN)/python,python3))
BUNDLE = gpu-check
GPU_DATA ?= $(if $(wildcard $(BUNDLE)/cifar10.pt),$(BUNDLE)/cifar10.pt,../shared/data/cifar10-jpeg.tar.gz)
gpu-check:
	PYTHONPATH=src:$(BUNDLE)/lib $(GPU_PYTHON) -m datadiet.tools.gpu_check --data $(GPU_DATA)

gpu-bundle: setup
	mkdir -p $(BUNDLE)/lib
	PYTHONPATH=src $(BIN)/python -m datadiet.tools.gpu_check --data ../shared/data/cifar10-jpeg.tar.gz --decode-to $(BUNDLE)/cifar10.pt
	cp -r $$($(BIN)/python -c 'import os, yaml; print(os.path.dirname(yaml.__file__))') $(BUNDLE)/lib/

# MLflow 3.17 opens an experiment on its GenAI pages: the link goes straight to the runs table.
ui: setup
	@echo "the study's runs: http://127.0.0.1:5000/#/experiments/$$($(BIN)/python -c 'import json; print(json.load(open("results/$(STUDY)/mlflow/store.json"))["experiment_id"])')"
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/results/$(STUDY)/mlflow.db

# For a cluster: jobs log to this server through MLFLOW_TRACKING_URI (printed when it starts).
MLFLOW_HOST ?= 0.0.0.0
MLFLOW_PORT ?= 5000
mlflow-server: setup
	datadiet mlflow-server --store results/mlflow-server --host $(MLFLOW_HOST) --port $(MLFLOW_PORT)

clean:
	rm -rf results/$(STUDY) .snakemake
