"""A rehearsal: a profile's cells exactly as the real run resolves them (configs, callbacks,
device, precision, attacks, exports, reports and charts), cut to a couple of batches, so the
paths of a profile that was never run (the paper's, on a GPU) execute once anywhere in minutes.

What is cut, and nothing else: epochs to one (a curve keeps one epoch per segment, so its
segments still continue each other), training to two batches and validation to one, the
labeled sets to a few batches of a small evaluation batch, the validation PGD, the ε sweep and
AutoAttack to a few images, the evaluation's PGD and AutoAttack's attacks to two iterations
each (every setting still runs; an image that no attack breaks would otherwise cost a CPU two
minutes of AutoAttack), the kNN monitor's bank and queries. On a CPU, also the training batch (to
8 images) and mixed precision (to 32-true): a CPU without bf16 units emulates it (10x slower
than float32 on an EPYC's two cores, measured beside another job: 100 s against 9.5 s for a
ResNet-18 step of 64 CIFAR images), and the paper profile's 2 x 256 views then cost a
rehearsal's pretraining 15 minutes; a GPU runs its bf16 and batch sizes as they are. What the
real run's steps cost, the budget benchmark measures apart (the projection that ends a
rehearsal). Rehearsals write under their own results root (`<results>/<profile>-rehearsal`),
and the cuts are in their fingerprints, so a rehearsal can never be taken for, or block, a real
result.
"""

from __future__ import annotations

import torch

from robust_ssl.runs import configs

# two, not one: the CLI reads `limit_train_batches: 1` as the float 1.0, i.e. every batch
TRAIN_BATCHES, VAL_BATCHES = 2, 1
EVAL_BATCH, TEST_IMAGES, VAL_IMAGES = 8, 8, 8  # one evaluation batch each
VAL_PGD_IMAGES, SWEEP_IMAGES, AUTOATTACK_IMAGES = 4, 4, 2
EVAL_PGD_STEPS, AUTOATTACK_ITERATIONS = 2, 2
KNN_BANK, KNN_QUERIES = 256, 128
CPU_BATCH, CPU_PRECISION = 8, "32-true"


def cut(config: dict, keeps_epochs: bool) -> dict:
    """`config` (resolved, routed) as its rehearsal runs it. `keeps_epochs`: the cell sets its
    own epochs (the curve's segments, mapped to 1, 2, 3, ... by the grid)."""
    trainer = config.setdefault("trainer", {})
    data = config["data"].setdefault("init_args", {})
    if trainer.get("accelerator") == "cpu" or not torch.cuda.is_available():
        data["batch_size"] = min(data.get("batch_size", CPU_BATCH), CPU_BATCH)
        if "precision" in trainer:
            trainer["precision"] = CPU_PRECISION
    if not keeps_epochs:
        trainer["max_epochs"] = 1
    trainer.update(limit_train_batches=TRAIN_BATCHES, limit_val_batches=VAL_BATCHES,
                   check_val_every_n_epoch=1)
    for callback in trainer.get("callbacks", []):
        if configs.resolve_class(callback["class_path"]).__name__ == "KNNMonitor":
            callback.setdefault("init_args", {}).update(bank_limit=KNN_BANK,
                                                        query_limit=KNN_QUERIES)
    if config["data"]["class_path"].endswith("LabeledDataModule"):
        batch = data.get("batch_size", 128)
        data.update(train_limit=TRAIN_BATCHES * batch, val_limit=VAL_IMAGES,
                    test_limit=TEST_IMAGES, eval_batch_size=EVAL_BATCH)
    model = config["model"].setdefault("init_args", {})
    if "val_pgd_examples" in model:
        model["val_pgd_examples"] = VAL_PGD_IMAGES
    if config["model"]["class_path"].endswith("AdversarialEvaluator"):
        model.update(sweep_examples=SWEEP_IMAGES, pgd_steps=EVAL_PGD_STEPS,
                     large_eps_steps=EVAL_PGD_STEPS)
        if model.get("autoattack_examples", 0) != 0:  # None: every image
            model.update(autoattack_examples=AUTOATTACK_IMAGES,
                         autoattack_iterations=AUTOATTACK_ITERATIONS)
    return config


def epochs(budgets: tuple[int, ...]) -> tuple[int, ...]:
    """A curve's budgets in a rehearsal: one epoch per segment (1, 2, 3, ...)."""
    return tuple(range(1, len(budgets) + 1))
