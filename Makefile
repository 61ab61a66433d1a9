# Two commands on a fresh machine: `make study` (laptop study end to end, with its report) and
# `make test` (the whole test suite). Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
# Where pip takes torch from: empty is PyPI's build (CUDA 13: NVIDIA driver 580 or newer, Turing or newer);
# https://download.pytorch.org/whl/cu126 suits drivers from 560 and V100s (README, "Which torch build").
TORCH_INDEX ?=
CONFIG ?= config.yaml
STUDY = $(shell sed -n 's/^study: *//p' $(CONFIG))
export PATH := $(BIN):$(PATH)

.PHONY: setup system-deps study test bench gpu-check gpu-bundle ui mlflow-server clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch first, pinned: the CUDA 2.14.1 build also runs on CPU (see README).
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.14.1 torchvision==0.29.1 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

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
	@if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge chromium >/dev/null; \
		else echo "not root: Slurm, munge and Chromium not installed, the tests that need them will say so and skip"; fi; \
	fi

test: setup system-deps
	$(BIN)/python -m pytest

# Speed figures, each a ratio measured side by side in one run: table on stdout, results/bench.json.
bench: setup
	$(BIN)/python -m benchmarks.run

# The paper's headline on one GPU in minutes (src/datadiet/gpu_check.py: results/gpu-check.json). It runs as
# it comes on a bare GPU machine (python3 with torch, pandas and scipy; no .venv, no internet): `make
# gpu-bundle`, here, first puts what such a machine lacks in gpu-check/ (ignored): the CIFAR-10 archive
# and PyYAML. Without a GPU it says so and exits 0.
PYTHON = $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
BUNDLE = gpu-check
GPU_DATA ?= $(if $(wildcard $(BUNDLE)/cifar10-jpeg.tar.gz),$(BUNDLE)/cifar10-jpeg.tar.gz,../shared/data/cifar10-jpeg.tar.gz)
gpu-check:
	PYTHONPATH=src:$(BUNDLE)/lib $(PYTHON) -m datadiet.gpu_check --data $(GPU_DATA)

gpu-bundle: setup
	mkdir -p $(BUNDLE)/lib
	cp ../shared/data/cifar10-jpeg.tar.gz $(BUNDLE)/
	cp -r $$($(BIN)/python -c 'import os, yaml; print(os.path.dirname(yaml.__file__))') $(BUNDLE)/lib/

# MLflow 3.17 opens an experiment on its GenAI pages: the link goes straight to the runs table.
ui: setup
	@echo "the study's runs: http://127.0.0.1:5000/#/experiments/$$($(BIN)/python -c 'import json; print(json.load(open("results/$(STUDY)/mlflow/store.json"))["experiment_id"])')/runs?workflowType=machine_learning"
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/results/$(STUDY)/mlflow.db

# For a cluster: jobs log to this server through MLFLOW_TRACKING_URI (printed when it starts).
MLFLOW_HOST ?= 0.0.0.0
MLFLOW_PORT ?= 5000
mlflow-server: setup
	datadiet mlflow-server --store results/mlflow-server --host $(MLFLOW_HOST) --port $(MLFLOW_PORT)

clean:
	rm -rf results/$(STUDY) .snakemake
