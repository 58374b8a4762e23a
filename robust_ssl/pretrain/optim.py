"""The pretraining optimiser: SGD or Adam with the paper's exponentially decaying learning rate."""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch

from robust_ssl.errors import RobustSSLError


def kernel_options(module: pl.LightningModule) -> dict:
    """One fused kernel per optimiser step on a GPU; the multi-tensor (foreach) step on a CPU,
    where torch's fused kernels are not always built."""
    return {"fused": True} if module.device.type == "cuda" else {"foreach": True}


def exponential_decay(module: pl.LightningModule, optimizer: Literal["sgd", "adam"], lr: float,
                      weight_decay: float, momentum: float = 0.9,
                      final_lr_ratio: float = 0.01) -> dict:
    """Optimizer and a per-step ExponentialLR that ends the run at `final_lr_ratio` × `lr`.

    Decaying per step rather than per epoch gives the same curve whatever the epoch count and
    also works for runs bounded by max_steps.
    """
    if not 0 < final_lr_ratio <= 1:
        raise RobustSSLError(f"final_lr_ratio={final_lr_ratio} is outside (0, 1]")
    params, kernel = module.parameters(), kernel_options(module)
    if optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                              **kernel)
    elif optimizer == "adam":
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kernel)
    else:
        raise RobustSSLError(f"unknown optimizer {optimizer!r}: choose 'sgd' or 'adam'")
    steps = max(1, int(module.trainer.estimated_stepping_batches))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=final_lr_ratio ** (1 / steps))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
