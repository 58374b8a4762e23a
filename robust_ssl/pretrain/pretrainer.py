"""One shared encoder trained on any set of pretext tasks: loss = Σ weight · task loss.

A pretext task is a small nn.Module with a `name` and `loss(encode, images)`, where `encode`
maps [0, 1] or uint8 images to the encoder's features and `images` is the uint8 batch on its
device; the task brings its own augmentation and head. A single task is a single-task
pretrainer (SimCLR, Rotation, Jigsaw); several make the paper's multi-task pretraining, every
task seeing the same batch of images. An adversarial task (one with `adversarial = True`)
also calls `encode(x, branch="adversarial", update_statistics=False)`: its attack's forward
passes leave the BatchNorm statistics alone, and with `dual_batchnorm` its adversarial images
are normalised by BatchNorms of their own (models/batchnorm.py).

Every task has `bind(encoder)`, called once with the shared encoder: it builds the heads for
the encoder's `feature_dim` (so any backbone serves any task) and, for a task with a momentum
network (BYOL's target, MoCo's key encoder; pretrain/momentum.py), its copy, which
`after_optimizer_step(encoder, step, total_steps)` moves after every optimiser step (`step`:
the index of the step just taken, from 0). The copy
is the task's submodule: saved in checkpoints, never optimised, never exported.
"""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch
from torch import nn

from robust_ssl.errors import RobustSSLError
from robust_ssl.models.backbone import Backbone, Encoder, Stem
from robust_ssl.models.batchnorm import (BRANCHES, Branch, batchnorm_branch, frozen_statistics,
                                         with_dual_batchnorm)
from robust_ssl.plumbing.optim import optimizer_and_schedule


class Pretrainer(pl.LightningModule):
    """Encoder (`backbone`, models/backbone.py) + one head per task. Optimiser:
    plumbing/optim.py's, decaying exponentially; bf16 and channels_last on a GPU; `compile`
    compiles the encoder.

    dual_batchnorm: ACL's dual BatchNorm, for adversarial tasks: clean and adversarial images
    go through separate BatchNorm statistics and affine parameters; `exported_branch` is the
    one the exported encoder (and the kNN monitor) keeps, the adversarial one by default, as
    robust features are what adversarial pretraining is for.
    """

    def __init__(
        self,
        tasks: list[nn.Module],
        weights: list[float] | None = None,
        backbone: Backbone = "resnet18",
        stem: Stem = "cifar",
        optimizer: Literal["sgd", "adam"] = "sgd",
        lr: float = 0.12,
        weight_decay: float = 5e-4,
        momentum: float = 0.9,
        final_lr_ratio: float = 0.01,
        channels_last: bool = True,
        compile: bool = False,
        dual_batchnorm: bool = False,
        exported_branch: Branch = "adversarial",
    ):
        super().__init__()
        if not tasks:
            raise RobustSSLError("a pretrainer needs at least one task")
        names = [task.name for task in tasks]
        if len(set(names)) != len(names):
            raise RobustSSLError(f"each task may appear once, got {names}")
        weights = [1.0] * len(tasks) if weights is None else list(weights)
        if len(weights) != len(tasks) or any(w < 0 for w in weights):
            raise RobustSSLError(f"weights {weights} must be {len(tasks)} non-negative numbers, "
                                 f"one per task ({', '.join(names)})")
        if exported_branch not in BRANCHES:
            raise RobustSSLError(f"exported_branch={exported_branch!r}: choose clean or "
                                 "adversarial")
        if dual_batchnorm and not any(getattr(task, "adversarial", False) for task in tasks):
            raise RobustSSLError(f"dual_batchnorm needs an adversarial task; {names} has none: "
                                 "add adv_simclr or set dual_batchnorm: false")
        self.save_hyperparameters(ignore=["tasks", "views"])
        self.encoder = Encoder(backbone, stem)
        if dual_batchnorm:
            with_dual_batchnorm(self.encoder, default=exported_branch)
        for task in tasks:
            task.bind(self.encoder)
        self.tasks = nn.ModuleList(tasks)
        self.weights = weights

    @property
    def pretext_name(self) -> str:
        return "+".join(task.name for task in self.tasks)

    def configure_model(self) -> None:
        if self.hparams.compile:
            self.encoder.compile()

    def on_fit_start(self) -> None:
        if self.hparams.channels_last:  # faster on GPUs and, measured, on CPUs too
            self.to(memory_format=torch.channels_last)

    def encode(self, images: torch.Tensor, branch: Branch = "clean",
               update_statistics: bool = True) -> torch.Tensor:
        """Features of a task's images: clean ones through the clean BatchNorms, an attack's
        through the adversarial ones (the same ones without dual BatchNorm)."""
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with batchnorm_branch(self.encoder, branch), \
                frozen_statistics(self.encoder, frozen=not update_statistics):
            return self.encoder(images)

    def task_losses(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task.name: task.loss(self.encode, images) for task in self.tasks}

    def weighted_sum(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(w * loss for w, loss in zip(self.weights, losses.values()))

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        return self.weighted_sum(self.task_losses(images))

    def training_step(self, images: torch.Tensor, batch_idx: int) -> torch.Tensor:
        losses = self.task_losses(images)
        loss = self.weighted_sum(losses)
        if len(losses) > 1:
            for name, task_loss in losses.items():
                self.log(f"train/{name}_loss", task_loss, on_step=True, on_epoch=True,
                         batch_size=len(images))
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True,
                 batch_size=len(images))
        return loss

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        self.move_momentum_networks(self.trainer.global_step,
                                    int(self.trainer.estimated_stepping_batches))

    def move_momentum_networks(self, step: int, total_steps: int) -> None:
        """Each task's momentum copy after an optimiser step (a loop without Lightning calls it
        too: benchmarks/learning.py)."""
        for task in self.tasks:
            if hasattr(task, "after_optimizer_step"):
                task.after_optimizer_step(self.encoder, step, total_steps)

    def configure_optimizers(self):
        hp = self.hparams
        return optimizer_and_schedule(self, hp.optimizer, hp.lr, hp.weight_decay, hp.momentum,
                                      final_lr_ratio=hp.final_lr_ratio)
