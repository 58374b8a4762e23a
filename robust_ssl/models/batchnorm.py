"""BatchNorm controls that adversarial pretraining needs: statistics an attack cannot move, and
ACL's dual BatchNorm (Jiang et al. 2020), where adversarial images are normalised with
statistics and affine parameters of their own, apart from the clean images'.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator, Literal

from torch import nn

Branch = Literal["clean", "adversarial"]
BRANCHES = ("clean", "adversarial")


class DualBatchNorm2d(nn.Module):
    """Two BatchNorm2d for one layer. `route` (set by `batchnorm_branch`) picks the one that
    normalises; unrouted (evaluation, the kNN monitor, the export) it is `default`."""

    def __init__(self, batchnorm: nn.BatchNorm2d, default: Branch = "adversarial"):
        super().__init__()
        self.clean = batchnorm
        self.adversarial = copy.deepcopy(batchnorm)
        self.default = default
        self.route: Branch | None = None

    def forward(self, x):
        return getattr(self, self.route or self.default)(x)


def with_dual_batchnorm(module: nn.Module, default: Branch = "adversarial") -> nn.Module:
    """`module` with every BatchNorm2d replaced, in place, by a DualBatchNorm2d whose two
    branches start from it."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, DualBatchNorm2d(child, default))
        else:
            with_dual_batchnorm(child, default)
    return module


def single_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of `module` with each DualBatchNorm2d replaced by its default branch: the
    plain network that fine-tuning loads (`module` itself when it has none)."""
    if not any(isinstance(m, DualBatchNorm2d) for m in module.modules()):
        return module
    plain = copy.deepcopy(module)
    for parent in list(plain.modules()):
        for name, child in parent.named_children():
            if isinstance(child, DualBatchNorm2d):
                setattr(parent, name, getattr(child, child.default))
    return plain


@contextmanager
def batchnorm_branch(module: nn.Module, branch: Branch) -> Iterator[None]:
    """Route every DualBatchNorm2d of `module` through `branch` (a no-op without any)."""
    duals = [m for m in module.modules() if isinstance(m, DualBatchNorm2d)]
    for dual in duals:
        dual.route = branch
    try:
        yield
    finally:
        for dual in duals:
            dual.route = None


@contextmanager
def frozen_statistics(module: nn.Module, frozen: bool = True) -> Iterator[None]:
    """While inside, BatchNorm layers in training mode still normalise with the batch's own
    statistics but leave their running statistics and batch counters as they were (an
    attack's forward passes are not data the model should remember). Modes are untouched."""
    layers = [m for m in module.modules() if frozen
              and isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True
