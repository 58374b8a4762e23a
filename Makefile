# robust-ssl: `make table1` reproduces the paper's Table 1, `make test` runs the tests;
# `make install` builds .venv/ (every target that needs it runs it first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Pinned: these builds are on the CI machines' disk (setup.cfg states the ranges we support).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install test clean-venv table1 table2 check-data

install: $(VENV)/.installed

# The stamp depends on setup.cfg, so a new dependency reinstalls on the next make.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

# ---- tables ----------------------------------------------------------------------------------
# PROFILE: paper (the paper's settings, for a GPU), quick (2-core CPU, < 45 min), smoke (CI).
GPU := $(shell nvidia-smi -L 2>/dev/null | grep -q GPU && echo yes)
PROFILE ?= $(if $(GPU),paper,quick)
DATA_DIR ?= data
PRETRAIN_DATA ?= cifar100
DOWNLOAD ?= 1
RESULTS ?= results
WANDB ?= offline
export WANDB
PRETRAIN_NAME := $(notdir $(patsubst %/,%,$(PRETRAIN_DATA)))
OUT := $(RESULTS)/$(PROFILE)
RUN := $(PY) -m robust_ssl.run
STAGE_ARGS = --profile $(PROFILE) --data-dir $(DATA_DIR)

# Runs before any training (order-only, so it never forces a rebuild): loads and caches the
# data, downloading what is missing when DOWNLOAD=1, and stops at once when it cannot.
check-data: | $(VENV)/.installed
	@echo "profile: $(PROFILE) ($(if $(GPU),a CUDA GPU is visible,no CUDA GPU visible)); choose with PROFILE=paper|quick|smoke"
	$(RUN) check-data --data-dir $(DATA_DIR) --datasets $(sort cifar10 $(PRETRAIN_DATA)) $(if $(filter 1,$(DOWNLOAD)),--download)

include experiments/tables.mk
