# Two commands on a fresh machine: `make study` (laptop study end to end, with its report) and
# `make test` (the whole test suite). Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
CONFIG ?= config.yaml
STUDY = $(shell sed -n 's/^study: *//p' $(CONFIG))
export PATH := $(BIN):$(PATH)

.PHONY: setup study test ui clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	# torch first, pinned: the CUDA 2.14.1 build also runs on CPU (see README).
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
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

test: setup
	$(BIN)/python -m pytest

ui: setup
	mlflow ui --backend-store-uri sqlite:///$(CURDIR)/results/$(STUDY)/mlflow.db

clean:
	rm -rf results/$(STUDY) .snakemake
