# The recipes of the paper's tables and of the pretraining-budget curve, included by the
# Makefile. The cells of every table are described once, in robust_ssl/runs/grid.py: `python -m
# robust_ssl.runs.grid <table>` runs them in order, each in a process of its own, and the report
# reads the same description.
#
# run.py decides for each cell from the fingerprint of its config and input files
# (robust_ssl/runs/rundir.py) whether its result is up to date (then it returns at once), missing or
# interrupted (then it runs or resumes), or made by another config (then it stops and names the
# differing keys; RESTART=1 redoes such cells). So rerunning after a crash redoes only what is
# missing, and a result never outlives the config that made it.

GRID_ARGS = --profile $(PROFILE) --results '$(OUT)' --data-dir '$(DATA_DIR)' \
    --pretrain-data '$(PRETRAIN_DATA)' --seeds $(SEEDS) --jobs $(JOBS) \
    $(if $(filter 1,$(RESTART)),--restart) $(if $(filter 1,$(RESIZE)),--resize) \
    $(if $(filter 1,$(REHEARSE)),--rehearse)

# the budget curve's epochs (curve only; empty = the profile's)
BUDGET_ARGS = $(if $(filter curve,$@),$(if $(strip $(CURVE_EPOCHS)),--epochs $(CURVE_EPOCHS)) \
    $(if $(strip $(SUPERVISED_EPOCHS)),--supervised-epochs $(SUPERVISED_EPOCHS)))

table1 table2 table3 curve: | $(INSTALLED) check-data
	$(PY) -m robust_ssl.runs.grid $@ $(GRID_ARGS) $(BUDGET_ARGS)
	$(PY) -m robust_ssl.report $@ --results '$(OUT)' --profile $(PROFILE) \
	    --pretrain-data '$(PRETRAIN_DATA)' --seeds $(SEEDS) $(BUDGET_ARGS) \
	    $(if $(filter 1,$(REHEARSE)),--rehearse)
