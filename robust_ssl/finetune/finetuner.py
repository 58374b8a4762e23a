"""Fine-tuning a (pretrained or random) encoder on labels, with on-the-fly FGSM batches.

The paper's sections 3.2 and 4.1: a prediction layer trained on a label fraction, with or
without FGSM examples generated against the current model at every step. The same module, from
random weights with `freeze="full"`, is the supervised no-pretraining baseline.
"""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from robust_ssl.attacks import FGSM, PGD, Attack, kl_divergence
from robust_ssl.data.modules import check_classes
from robust_ssl.errors import RobustSSLError
from robust_ssl.finetune.features import CacheFrozenFeatures
from robust_ssl.finetune.history import ValidationRecord, validation_record
from robust_ssl.models.backbone import Backbone, Encoder, Stem
from robust_ssl.models.export import load_encoder
from robust_ssl.plumbing.optim import optimizer_and_schedule

Freeze = Literal["linear", "partial", "full"]
NOT_RECORDED = "not recorded"  # `pretraining` of a classifier saved before it was kept


def trades_loss(logits_clean: torch.Tensor, logits_adv: torch.Tensor, labels: torch.Tensor,
                beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE(clean) + β·KL(p_clean ‖ p_adv), the KL): TRADES's loss, the KL averaged over the
    batch and differentiated through both predictions, as in its reference code."""
    kl = kl_divergence(logits_clean, logits_adv)
    return F.cross_entropy(logits_clean, labels) + beta * kl, kl


class FineTuner(pl.LightningModule):
    """Encoder + linear prediction layer, with a freezing policy and optional FGSM training.

    backbone, stem: the encoder (models/backbone.py), which must be the pretraining's.

    freeze: "linear" trains only the prediction layer (the paper); "partial" freezes the stem
    and the first `frozen_stages` residual stages; "full" trains everything. Frozen parts keep
    their weights and, held in eval mode, their BatchNorm statistics, bit for bit, even while
    FGSM back-propagates through them.

    adversarial: each training batch is attacked with `attack` (an attacks.Attack, in YAML a
    class_path + init_args as multitask.yaml lists tasks; default plain FGSM at ε = 8/255,
    the usual CIFAR budget, which the paper does not state) against the current model, and the
    loss is (1 − `adv_weight`)·CE(clean) + `adv_weight`·CE(adversarial): 0.5 is Goodfellow et
    al. 2015's mix, 1.0 trains on adversarial examples only (and its forward sees no clean
    batch, as in Madry et al.'s adversarial training). `FGSM(random_start=true)` is FGSM-RS
    (Wong et al. 2020), which avoids catastrophic overfitting of plain FGSM training; `PGD`
    with `steps` k (of ε/4) trains on PGD-k examples (Madry et al. 2018; with adv_weight 1.0
    the robust-SSL literature's ALF for a linear probe and AFF for full fine-tuning), at
    (k + 1)× FGSM's cost. `trades_beta` β replaces that mix by the TRADES loss (Zhang et
    al. 2019), CE(clean) + β·KL(p_clean ‖ p_adversarial), with TRADES's own adversary
    (`attacks.TRADES`, raising that KL) or any other `attack`; β = 6 is TRADES's CIFAR-10
    setting, larger trades clean accuracy for robustness.

    Validation logs clean and FGSM accuracy, and PGD-10 accuracy on the first
    `val_pgd_examples` validation images: catastrophic overfitting shows as PGD accuracy
    collapsing while FGSM accuracy holds or rises. Each validation's numbers are kept in the
    checkpoint (`validation_history`), where the evaluator looks for that collapse.

    standardize_features: the prediction layer reads features through a BatchNorm without
    affine parameters (the linear probe of MAE, He et al. 2022). Frozen encoders of different
    pretext tasks emit features of very different scales, and one learning rate cannot suit
    them all: unstandardised, a rotation encoder's probe diverged at lr 0.1 (loss ~100). At
    evaluation the fixed statistics fold into the linear layer, so it stays a linear classifier.

    A linear probe without adversarial examples sees the same features every epoch, so they
    are computed once (`cache_features`) and the prediction layer trains on them directly;
    not when the datamodule augments its training images (then every epoch's differ).

    attack_in_eval_mode: the training attack sees the model in eval mode (BatchNorm with its
    running statistics, and none of them updated by the attack's passes), as TRADES's
    reference code and the RobustSSL benchmark make their examples; the loss's forward is in
    training mode either way. Default off: Madry et al.'s PGD training attacks in training mode.

    Optimiser: SGD with `momentum` (Nesterov's unless `nesterov` is off) or AdamW, stepped per
    batch by `lr_schedule`: "cosine" anneals to zero; "step" multiplies the rate by `lr_decay`
    at each of `lr_milestones`, fractions of the run (0.4, 0.8 = epochs 10 and 20 of 25).
    `zero_init_head`: the prediction layer starts at zero, as the RobustSSL benchmark's.

    num_classes: None reads it from the datamodule at setup (and records it in the
    hyperparameters, so a checkpoint rebuilds the same head); a number must match the data.
    """

    def __init__(
        self,
        encoder_path: str | None = None,
        backbone: Backbone = "resnet18",
        stem: Stem = "cifar",
        num_classes: int | None = None,
        freeze: Freeze = "linear",
        frozen_stages: int = 2,
        adversarial: bool = False,
        attack: Attack | None = None,
        adv_weight: float = 0.5,
        trades_beta: float | None = None,
        optimizer: Literal["sgd", "adam"] = "sgd",
        lr: float = 0.1,
        weight_decay: float = 5e-4,
        momentum: float = 0.9,
        cache_features: bool = True,
        standardize_features: bool = True,
        val_pgd_examples: int = 256,
        nesterov: bool = True,
        lr_schedule: Literal["cosine", "step"] = "cosine",
        lr_milestones: tuple[float, ...] = (0.4, 0.8),
        lr_decay: float = 0.1,
        attack_in_eval_mode: bool = False,
        zero_init_head: bool = False,
    ):
        super().__init__()
        if freeze not in ("linear", "partial", "full"):
            raise RobustSSLError(f"unknown freeze {freeze!r}: choose linear, partial or full")
        if not 0.0 <= adv_weight <= 1.0:
            raise RobustSSLError(f"adv_weight={adv_weight} is outside [0, 1]")
        if trades_beta is not None and trades_beta < 0:
            raise RobustSSLError(f"trades_beta={trades_beta} is negative: TRADES's β weighs "
                                 "the KL term, e.g. 6.0 (or null for the adv_weight mix)")
        if attack is not None and not isinstance(attack, Attack):
            raise RobustSSLError(f"attack={attack!r} is not an attack: give one of "
                                 "robust_ssl.attacks' classes, e.g. FGSM(eps=8/255)")
        self.save_hyperparameters(ignore=["attack"])
        self.training_attack = FGSM(8 / 255) if attack is None else attack
        self.hparams["attack"] = self.training_attack.description()  # plain values: checkpoints
        eps = self.training_attack.eps                                 # load weights_only
        self.validation_attacks = {"fgsm": FGSM(eps), "pgd": PGD(eps, steps=10)}
        self.encoder = Encoder(backbone, stem)
        stages = len(self.encoder.stages)
        if not 0 <= frozen_stages < stages:
            raise RobustSSLError(f"frozen_stages={frozen_stages} is outside 0..{stages - 1} "
                                 f"(the residual stages of {backbone})")
        # what the encoder was pretrained as (its export's metadata), for the result
        self.pretraining: dict | None | str = None
        if encoder_path is not None:
            found = load_encoder(self.encoder, encoder_path)
            self.pretraining = {k: found.get(k) for k in ("pretext", "dataset", "epochs")}
            self.pretraining |= {k: found[k] for k in ("layout", "source") if k in found}
        self.trains_on_features = False  # set by CacheFrozenFeatures
        dim = self.encoder.feature_dim
        self.feature_norm = (torch.nn.BatchNorm1d(dim, affine=False) if standardize_features
                             else torch.nn.Identity())
        self.classifier: torch.nn.Linear | None = None
        if num_classes is not None:
            self._build_head(num_classes)
        self.validation_history: list[ValidationRecord] = []
        self.frozen = self._frozen_modules()
        for module in self.frozen:
            module.requires_grad_(False)
        self.train()

    def _build_head(self, num_classes: int) -> None:
        if num_classes < 2:
            raise RobustSSLError(f"num_classes={num_classes}: a classifier needs at least two")
        self.classifier = torch.nn.Linear(self.encoder.feature_dim, num_classes)
        if self.hparams.zero_init_head:
            torch.nn.init.zeros_(self.classifier.weight)
            torch.nn.init.zeros_(self.classifier.bias)

    def _frozen_modules(self) -> list[torch.nn.Module]:
        stages = self.encoder.stages
        policy = self.hparams.freeze
        count = {"linear": len(stages), "partial": 1 + self.hparams.frozen_stages,
                 "full": 0}[policy]
        return stages[:count]

    @property
    def caches_features(self) -> bool:
        hp = self.hparams
        return hp.cache_features and hp.freeze == "linear" and not hp.adversarial

    def train(self, mode: bool = True):
        """Frozen parts stay in eval mode, so BatchNorm never updates their statistics."""
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(self.encoder(x))

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from encoder features."""
        return self.classifier(self.feature_norm(features))

    def setup(self, stage: str) -> None:
        """Take the number of classes from the data (checked against a given one)."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        data_classes = getattr(datamodule, "num_classes", None)
        if self.classifier is None:
            if data_classes is None:
                raise RobustSSLError("num_classes is not set and there is no datamodule to "
                                     "read it from: pass model.num_classes")
            self.hparams.num_classes = data_classes
            self._build_head(data_classes)
        elif datamodule is not None:
            check_classes("the model has", self.hparams.num_classes, data_classes,
                          datamodule.hparams.dataset,
                          f"set model.num_classes to {data_classes} or null (read from the data)")
        # made here, in each process: under ddp_spawn, metric states made in __init__ would be
        # one shared-memory tensor that every rank adds to
        self.val_acc = MulticlassAccuracy(self.hparams.num_classes, average="micro")
        self.val_fgsm_acc = MulticlassAccuracy(self.hparams.num_classes, average="micro")
        self.val_pgd_acc = MulticlassAccuracy(self.hparams.num_classes, average="micro")

    def configure_callbacks(self):
        """A clean linear probe trains on features computed once (CacheFrozenFeatures),
        unless its training images are augmented."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        augments = getattr(getattr(datamodule, "hparams", None), "augment", False)
        return [CacheFrozenFeatures()] if self.caches_features and not augments else []

    def attack(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training attack's examples, made in eval mode if `attack_in_eval_mode`."""
        if not self.hparams.attack_in_eval_mode or not self.training:
            return self.training_attack(self, inputs, labels)
        self.eval()
        try:
            return self.training_attack(self, inputs, labels)
        finally:
            self.train()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        inputs, labels = batch
        if self.trains_on_features:
            loss = F.cross_entropy(self.predict(inputs), labels)
        elif not self.hparams.adversarial:
            loss = F.cross_entropy(self(inputs), labels)
        else:
            adversarial = self.attack(inputs, labels)
            if self.hparams.trades_beta is not None:  # two passes, as TRADES's reference code
                loss, loss_adv = trades_loss(self(inputs), self(adversarial), labels,
                                             self.hparams.trades_beta)
            elif self.hparams.adv_weight == 1.0:  # adversarial examples alone (Madry et al.):
                loss = loss_adv = F.cross_entropy(self(adversarial), labels)  # BatchNorm sees
            else:                                                   # no clean batch
                logits_clean, logits_adv = self(torch.cat([inputs, adversarial])).chunk(2)
                loss_clean = F.cross_entropy(logits_clean, labels)
                loss_adv = F.cross_entropy(logits_adv, labels)
                weight = self.hparams.adv_weight
                loss = (1 - weight) * loss_clean + weight * loss_adv
            self.log("train/loss_adv", loss_adv, batch_size=len(labels))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(labels))
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        """Clean and FGSM accuracy on every image, PGD-10 on the first few (see the class)."""
        images, labels = batch
        few = self.hparams.val_pgd_examples
        with torch.inference_mode(False):
            images, labels = images.clone(), labels.clone()
            adversarial = self.validation_attacks["fgsm"](self, images, labels)
            strong = None
            if batch_idx == 0 and few > 0:
                strong = self.validation_attacks["pgd"](self, images[:few], labels[:few])
        with torch.no_grad():
            self.val_acc(self(images), labels)
            self.val_fgsm_acc(self(adversarial), labels)
            if strong is not None:
                self.val_pgd_acc(self(strong), labels[:few])
        self.log("val/acc", self.val_acc, prog_bar=True)
        self.log("val/fgsm_acc", self.val_fgsm_acc, prog_bar=True)
        if strong is not None:
            self.log("val/pgd_acc", self.val_pgd_acc, prog_bar=True)

    def on_train_epoch_end(self) -> None:
        """A training loss that is no longer finite stops the run (checked once an epoch: no
        host sync in a step); its weights are NaN, and a classifier from them would read as
        a finished cell at chance accuracy."""
        loss = self.trainer.callback_metrics.get("train/loss")
        if loss is not None and not torch.isfinite(loss).all():
            raise RobustSSLError(
                f"the training loss is {float(loss)} after epoch {self.current_epoch}: the run "
                f"diverged (lr={self.hparams.lr}); lower model.lr, or standardise the features "
                "(model.standardize_features=true), and rerun with RESTART=1 (--restart)")

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.validation_history.append(
            validation_record(self.current_epoch, self.trainer.callback_metrics))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["validation_history"] = list(self.validation_history)
        checkpoint["pretraining"] = self.pretraining

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.validation_history = list(checkpoint.get("validation_history", []))
        if "pretraining" in checkpoint:  # a resumed run keeps what it was built with
            self.pretraining = checkpoint["pretraining"]
        elif self.hparams.encoder_path is None:  # a classifier from before the field existed
            self.pretraining = NOT_RECORDED

    def configure_optimizers(self):
        """SGD (Nesterov momentum unless `nesterov` is off) or AdamW over the trainable
        parameters, on `lr_schedule` (see the class)."""
        hp = self.hparams
        return optimizer_and_schedule(self, hp.optimizer, hp.lr, hp.weight_decay, hp.momentum,
                                      nesterov=hp.nesterov, schedule=hp.lr_schedule,
                                      milestones=hp.lr_milestones, decay=hp.lr_decay)
