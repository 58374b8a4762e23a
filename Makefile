# robust-ssl: `make table1` reproduces the paper's Table 1, `make test` runs the tests;
# `make install` builds .venv/ (every target that needs it runs it first).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# PY=python3 on the command line runs the tables in an environment that already has the
# packages (a GPU machine's image) instead of building .venv/
INSTALLED := $(if $(filter $(VENV)/bin/python,$(PY)),$(VENV)/.installed)
# Pinned: these builds are on the CI machines' disk (setup.cfg states the ranges we support).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install test test-all docs clean-venv table1 table2 table3 curve claims robustssl check-data

install: $(VENV)/.installed

# The stamp depends on setup.cfg, so a new dependency reinstalls on the next make.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PINS)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# Two tiers: `make test` runs the unit and integration tests (minutes); `make test-all` adds the
# end-to-end runs marked `slow` (smoke tables, curve, Table 3, multi-process DDP, AutoAttack).
# pytest-xdist runs TEST_WORKERS tests at once (a worker a core; TEST_WORKERS=0: one process).
TEST_WORKERS ?= auto
PYTEST_XDIST = -n $(TEST_WORKERS) --dist loadgroup
test: $(VENV)/.installed
	$(PY) -m pytest -m "not slow" $(PYTEST_XDIST) $(PYTEST_ARGS)

test-all: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

# The documentation site (docs/, mkdocs.yml): built into site/ with --strict, so that a broken
# link, a page left out of the navigation or a failing generated block fails it; SERVE=1 serves
# it at http://127.0.0.1:8000 instead.
docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs $(if $(filter 1,$(SERVE)),serve,build --strict)

$(VENV)/.docs-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $@

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
# W&B artifacts of encoders and classifiers: reference (path and checksum; the default) or
# upload (the files themselves, 45 MB each for a ResNet-18); results and tables always upload
MODEL_ARTIFACTS ?= reference
RESTART ?= 0
# 1: check finished cells' files against their SHA-256 on record, not only sizes and times
VERIFY ?= 0
RESIZE ?= 0
# cells at once: each on its own GPU, or a share of the CPU cores (1: one after another)
JOBS ?= 1
# where the cells run: local (this machine, JOBS at once) or slurm (every cell a SLURM job through
# submitit, after the cells it needs; robust_ssl/runs/slurm.py). Each SLURM cell asks for what
# the SLURM_* variables say (empty: the cluster's default), or SLURM_CONFIG's YAML; DRY_RUN=1
# prints the plan and submits nothing.
EXECUTOR ?= local
SLURM_PARTITION ?=
SLURM_ACCOUNT ?=
SLURM_QOS ?=
SLURM_TIME ?=
GPUS_PER_CELL ?=
CPUS_PER_CELL ?=
TASKS_PER_CELL ?=
SLURM_MEM ?=
SLURM_CONSTRAINT ?=
SLURM_OPTIONS ?=
SLURM_CONFIG ?=
# how each SLURM job starts Python, e.g. "apptainer exec --nv robust-ssl.sif python" (containers/)
SLURM_PYTHON ?=
DRY_RUN ?= 0
# a cell another process runs (a second make on this RESULTS, a SLURM job): wait for it and
# read it as up to date, or skip it and what needs it (robust_ssl/runs/celllock.py)
HELD ?= wait
# every cell runs once per seed; the tables give mean ± std over them
SEEDS ?= $(if $(and $(filter paper,$(PROFILE)),$(filter-out 1,$(REHEARSE))),0 1 2,0)
# 1: every cell of the table cut to a couple of batches (robust_ssl/runs/rehearsal.py), under
# $(RESULTS)/$(PROFILE)-rehearsal, so a profile's every path runs once in minutes, anywhere
REHEARSE ?= 0
# a rehearsal of the paper or quick profile ends with what the real run would cost on this
# device (benchmarks/budget.py on small batches: about a minute on a CPU); 0 skips it
PROJECTION ?= 1
# `make curve`: SimCLR's pretraining epochs probed and the supervised baseline's budgets
# (empty: the profile's, robust_ssl/grid.py); more epochs continue the existing run
CURVE_EPOCHS ?=
SUPERVISED_EPOCHS ?=
# `make robustssl`: encoder files of other codebases, "name=path[,key=value...] ..." (keys:
# backbone, stem, branch, normalize, prefix; robust_ssl/models/layouts.py), and this suite's
# pretext tasks whose encoders run beside them (empty: none)
ENCODERS ?=
OURS ?= simclr adv_simclr
export WANDB MODEL_ARTIFACTS

# Bad variables stop here, before anything is written. Make splits file names at spaces, so
# paths that become targets (RESULTS, PRETRAIN_DATA) may not have any; DATA_DIR is quoted.
ifneq ($(filter table1 table2 table3 curve claims robustssl check-data,$(MAKECMDGOALS)),)
ifeq ($(filter $(PROFILE),paper quick smoke),)
$(error PROFILE=$(PROFILE) is unknown: choose paper, quick or smoke)
endif
ifeq ($(filter $(WANDB),offline online off),)
$(error WANDB=$(WANDB) is unknown: choose offline (the default), online or off)
endif
ifeq ($(filter $(MODEL_ARTIFACTS),reference upload),)
$(error MODEL_ARTIFACTS=$(MODEL_ARTIFACTS) is unknown: choose reference (the default) or upload)
endif
ifneq ($(words $(RESULTS)),1)
$(error RESULTS='$(RESULTS)' contains a space or is empty, which make cannot handle in file names: choose a path without spaces)
endif
ifneq ($(shell echo '$(SEEDS)' | grep -Eqx ' *[0-9]+( +[0-9]+)* *' && echo ok),ok)
$(error SEEDS='$(SEEDS)' is not a list of seeds: give non-negative integers, e.g. SEEDS="0 1 2")
endif
ifneq ($(shell echo '$(CURVE_EPOCHS) $(SUPERVISED_EPOCHS)' | grep -Eqx ' *([1-9][0-9]* *)*' && echo ok),ok)
$(error CURVE_EPOCHS='$(CURVE_EPOCHS)' SUPERVISED_EPOCHS='$(SUPERVISED_EPOCHS)' are not lists of epochs: give positive integers, e.g. CURVE_EPOCHS="1 2 4 8")
endif
ifneq ($(shell echo '$(JOBS)' | grep -Eqx '[1-9][0-9]*' && echo ok),ok)
$(error JOBS='$(JOBS)' is not a number of cells at once: give a positive integer, e.g. JOBS=2)
endif
ifeq ($(filter $(HELD),wait skip),)
$(error HELD=$(HELD) is unknown: choose wait (the default: a cell another process runs is awaited) or skip)
endif
ifeq ($(filter $(EXECUTOR),local slurm),)
$(error EXECUTOR=$(EXECUTOR) is unknown: choose local (this machine) or slurm (a SLURM cluster))
endif
ifneq ($(words $(PRETRAIN_DATA)),1)
$(error PRETRAIN_DATA='$(PRETRAIN_DATA)' contains a space or is empty: use a path without spaces, e.g. a symbolic link to it)
endif
endif

OUT := $(RESULTS)/$(PROFILE)$(if $(filter 1,$(REHEARSE)),-rehearsal)
RUN := $(PY) -m robust_ssl.runs.run

# Runs before any training (order-only, so it never forces a rebuild): loads and caches the
# data, downloading what is missing when DOWNLOAD=1, and stops at once when it cannot.
check-data: | $(INSTALLED)
	@echo "profile: $(PROFILE) ($(if $(GPU),a CUDA GPU is visible,no CUDA GPU visible)); choose with PROFILE=paper|quick|smoke"
	$(RUN) check-data --data-dir '$(DATA_DIR)' --labeled cifar10 --pretrain '$(PRETRAIN_DATA)' \
	    $(if $(filter 1,$(DOWNLOAD)),--download) $(if $(filter 1,$(RESIZE)),--resize)


include experiments/tables.mk
