"""Momentum networks: the state BYOL's target and MoCo's key encoder keep beyond a loss.

A momentum network is a frozen copy of online modules that follows them by an exponential
moving average (EMA) after every optimiser step. It is an ordinary submodule of its task, so it
is saved in checkpoints and restored on resume like any weight, and the optimiser never sees
it (its parameters do not require gradients).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


class MomentumCopy(nn.Module):
    """A copy of `online` updated by θ' ← m·θ' + (1 − m)·θ (`update`).

    Only parameters follow the online network; buffers (BatchNorm statistics) are the copy's
    own, from its own forward passes, as in BYOL's and MoCo's code.
    """

    def __init__(self, online: nn.Module):
        super().__init__()
        self.module = copy.deepcopy(online).requires_grad_(False)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, online: nn.Module, momentum: float) -> None:
        ours, theirs = list(self.module.parameters()), list(online.parameters())
        if len(ours) != len(theirs):
            raise ValueError(f"the momentum copy has {len(ours)} parameters, the online "
                             f"network {len(theirs)}: they must be the same architecture")
        for target, source in zip(ours, theirs):
            target.lerp_(source.detach(), 1.0 - momentum)


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """BYOL's schedule, m = 1 − (1 − base)·(cos(π·step/total) + 1)/2: `base` at the start,
    rising to 1 at the end of the run, so the target settles as training converges."""
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
