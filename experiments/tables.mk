# The recipes of the paper's tables, included by the Makefile. Every target is a result file,
# so a rerun after an interruption redoes only what is missing; each step is one call of
# `python -m robust_ssl.run`, which runs experiments/$(PROFILE)/<stage or task>.yaml in the
# step's own run directory.
#
# Every step is FORCEd: make only sequences them, and run.py decides from the fingerprint of
# the stage's config and input files (robust_ssl/rundir.py) whether its result is up to date
# (then it returns at once), missing or interrupted (then it runs or resumes), or made by
# another config (then it stops and names the differing keys; RESTART=1 redoes such steps).
# So a result never outlives the config that made it.

FRACTION_1 := 0.01
FRACTION_10 := 0.1
FRACTION_30 := 0.3
FRACTION_100 := 1.0
TRAINING_clean := --set model.adversarial=false
TRAINING_adv := --set model.adversarial=true
encoder = $(OUT)/$(1)-$(PRETRAIN_NAME)/encoder.pt

# pretraining(task, table): one encoder per pretext task and pretraining set
pretrain_cmd = $(RUN) pretrain $(STAGE_ARGS) --group $(2)-$(PROFILE) --task $(1) \
    --run-dir '$(OUT)/$(1)-$(PRETRAIN_NAME)' --set 'data.dataset=$(PRETRAIN_DATA)'
define pretraining
$(call encoder,$(1)): FORCE | $(INSTALLED) check-data
	$(call pretrain_cmd,$(1),$(2))
endef

# cell(name, stage, overrides, prerequisites, table): train -> name/classifier.ckpt, then
# evaluate -> name.json in the same process (one start-up of torch per cell, not two);
# W&B groups the runs as <table>-<profile>
train_cmd = $(RUN) $(2) $(STAGE_ARGS) --group $(5)-$(PROFILE) --run-dir '$(OUT)/$(1)' $(3)
define cell
$(OUT)/$(1).json: $(4) FORCE | $(INSTALLED) check-data
	$(call train_cmd,$(1),$(2),$(3),$(4),$(5)) --evaluate-output '$(OUT)/$(1).json' \
	    $(addprefix --evaluate-set ,$(DATA_SETS))
endef

# probe(task, fraction, training, table): a linear probe of a pretrained encoder
probe_name = $(1)-$(PRETRAIN_NAME)-f$(2)-$(3)
define probe
$(call cell,$(call probe_name,$(1),$(2),$(3)),finetune,$(TRAINING_$(3)) \
    --set data.fraction=$(FRACTION_$(2)) --set model.encoder_path=$(call encoder,$(1)),$(call encoder,$(1)),$(4))
endef

$(eval $(call pretraining,simclr,table1))
$(foreach task,rotation jigsaw multitask,$(eval $(call pretraining,$(task),table2)))

# Table 1: SimCLR probes at four label fractions, the supervised baseline, a random encoder
$(foreach f,1 10 30 100,$(foreach t,clean adv,$(eval $(call probe,simclr,$(f),$(t),table1))))
$(foreach t,clean adv,$(eval $(call cell,supervised-$(t),supervised,$(TRAINING_$(t)),,table1)))
$(foreach t,clean adv,$(eval $(call cell,random-f100-$(t),finetune,\
    $(TRAINING_$(t)) --set data.fraction=1.0 --set model.encoder_path=null,,table1)))
TABLE1_RESULTS := $(foreach f,1 10 30 100,$(foreach t,clean adv,$(OUT)/$(call probe_name,simclr,$(f),$(t)).json)) \
    $(foreach t,clean adv,$(OUT)/supervised-$(t).json $(OUT)/random-f100-$(t).json)

# Table 2: adversarial linear probes on 30% of the labels for each pretext task (SimCLR's
# is Table 1's cell, reused)
$(foreach task,rotation jigsaw multitask,$(eval $(call probe,$(task),30,adv,table2)))
TABLE2_RESULTS := $(foreach task,rotation jigsaw simclr multitask,$(OUT)/$(call probe_name,$(task),30,adv).json)

table1: $(TABLE1_RESULTS) | $(INSTALLED)
	$(PY) -m robust_ssl.report table1 --results '$(OUT)' --pretrain $(PRETRAIN_NAME) --profile $(PROFILE)

table2: $(TABLE2_RESULTS) | $(INSTALLED)
	$(PY) -m robust_ssl.report table2 --results '$(OUT)' --pretrain $(PRETRAIN_NAME) --profile $(PROFILE)
