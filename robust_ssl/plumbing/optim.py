"""The one optimiser builder of every stage: SGD (momentum, optionally Nesterov) or AdamW over
the trainable parameters, stepped per batch by a schedule over the whole run: the paper's
exponential decay for pretraining, cosine annealing for fine-tuning, or steps at fractions of
the run (the RobustSSL benchmark's ×0.1 at epochs 10 and 20 of 25)."""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch

from robust_ssl.errors import RobustSSLError

Optimizer = Literal["sgd", "adam"]
Schedule = Literal["exponential", "cosine", "step"]


def kernel_options(module: pl.LightningModule) -> dict:
    """One fused kernel per optimiser step on a GPU; the multi-tensor (foreach) step on a CPU,
    where torch's fused kernels are not always built."""
    return {"fused": True} if module.device.type == "cuda" else {"foreach": True}


def optimizer_and_schedule(module: pl.LightningModule, optimizer: Optimizer, lr: float,
                           weight_decay: float, momentum: float = 0.9, nesterov: bool = False,
                           schedule: Schedule = "exponential",
                           final_lr_ratio: float = 0.01, milestones: tuple[float, ...] = (),
                           decay: float = 0.1) -> dict:
    """Lightning's optimiser config for `module`'s trainable parameters.

    "exponential" decays per step to `final_lr_ratio` × `lr` at the end of the run (per step, so
    the curve is the same whatever the epoch count, and works for runs bounded by max_steps);
    "cosine" anneals to zero over the run; "step" multiplies the rate by `decay` once the run
    has passed each of `milestones` (fractions of its steps: 0.4 of 25 epochs = after epoch 10,
    as an epoch-wise MultiStepLR at 10), so a profile that cuts the epochs keeps the shape.
    """
    if not 0 < final_lr_ratio <= 1:
        raise RobustSSLError(f"final_lr_ratio={final_lr_ratio} is outside (0, 1]")
    if schedule == "step" and not all(0 < m < 1 for m in milestones):
        raise RobustSSLError(f"lr_milestones={list(milestones)}: give fractions of the run "
                             "between 0 and 1, e.g. [0.4, 0.8]")
    params = [p for p in module.parameters() if p.requires_grad]
    kernel = kernel_options(module)
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov,
                              weight_decay=weight_decay, **kernel)
    elif optimizer == "adam":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kernel)
    else:
        raise RobustSSLError(f"unknown optimizer {optimizer!r}: choose 'sgd' or 'adam'")
    steps = max(1, int(module.trainer.estimated_stepping_batches))
    if schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    elif schedule == "step":
        scheduler = torch.optim.lr_scheduler.MultiStepLR(
            opt, milestones=sorted(round(m * steps) for m in milestones), gamma=decay)
    elif schedule == "exponential":
        scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=final_lr_ratio ** (1 / steps))
    else:
        raise RobustSSLError(f"unknown learning-rate schedule {schedule!r}: choose cosine, "
                             "step or exponential")
    return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
