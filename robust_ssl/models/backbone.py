"""ResNet-18 encoder for 32×32 images, taking [0, 1] pixels and normalising inside.

Normalisation lives in the model so that every caller, attacks above all, works in pixel space
where an L∞ budget of 8/255 means what it says.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torchvision.models import resnet18

from robust_ssl.errors import RobustSSLError

# Per-channel statistics of the CIFAR-10 training images (the usual constants).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

Stem = Literal["cifar", "strided", "imagenet"]
STEMS = ("cifar", "strided", "imagenet")


class Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ResNet18Encoder(nn.Module):
    """torchvision's ResNet-18 up to the average pool: [0, 1] images -> 512-d features.

    stem="cifar": 3×3 conv, stride 1, no max-pool (the usual CIFAR ResNet, as in SimCLR's
    CIFAR experiments); "strided": the same conv with stride 2, 4× fewer FLOPs, for CPU
    profiles; "imagenet": torchvision's 7×7/2 conv and max-pool, 16× fewer FLOPs on 32×32.
    """

    feature_dim = 512

    def __init__(
        self,
        stem: Stem = "cifar",
        mean: tuple[float, float, float] = CIFAR10_MEAN,
        std: tuple[float, float, float] = CIFAR10_STD,
    ):
        super().__init__()
        if stem not in STEMS:
            raise RobustSSLError(f"unknown stem {stem!r}: choose one of {', '.join(STEMS)}")
        self.stem = stem
        net = resnet18(weights=None)
        if stem != "imagenet":
            stride = 1 if stem == "cifar" else 2
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=stride, padding=1, bias=False)
            net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.normalize = Normalize(mean, std)
        self.net = net

    @property
    def architecture(self) -> dict:
        """What a saved encoder must match to be loaded into this one."""
        return {"name": "resnet18", "stem": self.stem, "feature_dim": self.feature_dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))
