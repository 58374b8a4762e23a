# The recipes of the paper's tables and of the pretraining-budget curve, included by the
# Makefile. The cells of every table are described once, in robust_ssl/runs/grid.py: `python -m
# robust_ssl.runs.grid <table>` runs them in order, each in a process of its own (`robust-ssl
# <table>` runs that, then the report), and the report reads the same description.
#
# run.py decides for each cell from the fingerprint of its config and input files
# (robust_ssl/runs/rundir.py) whether its result is up to date (then it returns at once), missing or
# interrupted (then it runs or resumes), or made by another config (then it stops and names the
# differing keys; RESTART=1 redoes such cells). So rerunning after a crash redoes only what is
# missing, and a result never outlives the config that made it.

GRID_ARGS = --profile $(PROFILE) --results '$(OUT)' --data-dir '$(DATA_DIR)' \
    --pretrain-data '$(PRETRAIN_DATA)' --seeds $(SEEDS) --jobs $(JOBS) \
    $(if $(filter 1,$(RESTART)),--restart) $(if $(filter 1,$(VERIFY)),--verify) \
    $(if $(filter 1,$(RESIZE)),--resize) \
    $(if $(filter 1,$(REHEARSE)),--rehearse) $(EXECUTOR_ARGS)

# each given SLURM_* variable as the grid's flag (robust_ssl/runs/slurm.py)
slurm_flag = $(if $(strip $(2)),$(1) '$(strip $(2))')
EXECUTOR_ARGS = --executor $(EXECUTOR) $(if $(filter 1,$(DRY_RUN)),--dry-run) --held $(HELD) \
    $(call slurm_flag,--slurm-partition,$(SLURM_PARTITION)) \
    $(call slurm_flag,--slurm-account,$(SLURM_ACCOUNT)) \
    $(call slurm_flag,--slurm-qos,$(SLURM_QOS)) $(call slurm_flag,--slurm-time,$(SLURM_TIME)) \
    $(call slurm_flag,--gpus-per-cell,$(GPUS_PER_CELL)) \
    $(call slurm_flag,--cpus-per-cell,$(CPUS_PER_CELL)) \
    $(call slurm_flag,--tasks-per-cell,$(TASKS_PER_CELL)) \
    $(call slurm_flag,--slurm-mem,$(SLURM_MEM)) \
    $(call slurm_flag,--slurm-constraint,$(SLURM_CONSTRAINT)) \
    $(call slurm_flag,--slurm-config,$(SLURM_CONFIG)) \
    $(call slurm_flag,--slurm-python,$(SLURM_PYTHON)) \
    $(foreach option,$(SLURM_OPTIONS),--slurm-option='$(option)')

# the budget curve's epochs (curve only; empty = the profile's)
BUDGET_ARGS = $(if $(filter curve,$@),$(if $(strip $(CURVE_EPOCHS)),--epochs $(CURVE_EPOCHS)) \
    $(if $(strip $(SUPERVISED_EPOCHS)),--supervised-epochs $(SUPERVISED_EPOCHS)))

# the RobustSSL table's rows (robustssl only)
ROW_ARGS = $(if $(filter robustssl,$@),--encoders $(ENCODERS) --ours $(OURS))

REPORT_ARGS = --results '$(OUT)' --profile $(PROFILE) --pretrain-data '$(PRETRAIN_DATA)' \
    --seeds $(SEEDS) $(BUDGET_ARGS) $(ROW_ARGS) $(if $(filter 1,$(REHEARSE)),--rehearse)

# after a rehearsal: the real run's projected cost on this device, from its measured step rates
PROJECT = $(and $(filter 1,$(REHEARSE)),$(filter 1,$(PROJECTION)),$(filter paper quick,$(PROFILE)),$(filter-out 1,$(DRY_RUN)))
BUDGET_CALL = $(PY) benchmarks/budget.py --profile $(PROFILE) --steps 2 \
    --devices 1 $(if $(GPU),$(shell nvidia-smi -L 2>/dev/null | grep -c ^GPU),--batch 16) \
    $(if $(filter paper,$(PROFILE)),--autoattack 1)

# `robust-ssl <table>` (robust_ssl/tables.py) checks the data, runs the cells, then writes
# the report; make only turns its variables into that command's flags.
table1 table2 table3 curve robustssl: | $(INSTALLED)
	$(PY) -m robust_ssl $@ $(GRID_ARGS) $(BUDGET_ARGS) $(ROW_ARGS) \
	    $(if $(filter 1,$(DOWNLOAD)),--download)
	$(if $(PROJECT),@echo "rehearsal done; what the real $(PROFILE) run would cost here:" && $(BUDGET_CALL))

# The paper's claims, audited from the finished Table 1 and Table 2 cells' per-image records
# (robust_ssl/report/claims.py): runs nothing, names the cells it misses.
claims: | $(INSTALLED)
	$(PY) -m robust_ssl claims $(REPORT_ARGS)
