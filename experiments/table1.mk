# The recipe of the paper's Table 1, included by the Makefile. Every target is a result file,
# so a rerun after an interruption redoes only what is missing; each cell is one call of
# `python -m robust_ssl.run`, which runs experiments/$(PROFILE)/<stage>.yaml in its run directory.

ENCODER := $(OUT)/simclr-$(PRETRAIN_NAME)/encoder.pt
FRACTION_1 := 0.01
FRACTION_10 := 0.1
FRACTION_30 := 0.3
FRACTION_100 := 1.0
TRAINING_clean := --set model.adversarial=false
TRAINING_adv := --set model.adversarial=true

$(ENCODER): | $(VENV)/.installed check-data
	$(RUN) pretrain $(STAGE_ARGS) --run-dir $(@D) --set data.dataset=$(PRETRAIN_DATA)

# cell(name, stage, overrides, prerequisites): train -> classifier.ckpt, evaluate -> name.json
define cell
$(OUT)/$(1)/classifier.ckpt: $(4) | $(VENV)/.installed check-data
	$(RUN) $(2) $(STAGE_ARGS) --run-dir $$(@D) $(3)
$(OUT)/$(1).json: $(OUT)/$(1)/classifier.ckpt
	$(RUN) evaluate $(STAGE_ARGS) --run-dir $(OUT)/$(1) --output $$@
TABLE1_RESULTS += $(OUT)/$(1).json
endef

$(foreach f,1 10 30 100,$(foreach t,clean adv,$(eval $(call cell,simclr-$(PRETRAIN_NAME)-f$(f)-$(t),finetune,\
    $(TRAINING_$(t)) --set data.fraction=$(FRACTION_$(f)) --set model.encoder_path=$(ENCODER),$(ENCODER)))))
$(foreach t,clean adv,$(eval $(call cell,supervised-$(t),supervised,$(TRAINING_$(t)),)))
$(foreach t,clean adv,$(eval $(call cell,random-f100-$(t),finetune,\
    $(TRAINING_$(t)) --set data.fraction=1.0 --set model.encoder_path=null,)))

table1: $(TABLE1_RESULTS) | $(VENV)/.installed
	$(PY) -m robust_ssl.report table1 --results $(OUT) --pretrain $(PRETRAIN_NAME) --profile $(PROFILE)
