"""The encoders for 32×32 images, taking [0, 1] pixels and normalising inside: ResNet-18 (the
paper's), ResNet-50 (torchvision's, the SSL literature's) and WideResNet-28-10 / 34-10 (the
robustness literature's, RobustBench's definition), chosen by `backbone` in every stage.

Normalisation lives in the model so that every caller, attacks above all, works in pixel space
where an L∞ budget of 8/255 means what it says.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from robust_ssl.errors import RobustSSLError

# Per-channel statistics of the CIFAR-10 training images (the usual constants).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

Stem = Literal["cifar", "strided", "imagenet"]
STEMS = ("cifar", "strided", "imagenet")
Backbone = Literal["resnet18", "resnet50", "wrn28_10", "wrn34_10"]
BACKBONES = ("resnet18", "resnet50", "wrn28_10", "wrn34_10")
WIDE = {"wrn28_10": (28, 10), "wrn34_10": (34, 10)}  # (depth, widen factor)


class Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class PreActBlock(nn.Module):
    """WideResNet's pre-activation basic block: BN-ReLU-conv3×3, twice, plus the shortcut (a
    1×1 conv of the activated input where the shape changes), dropout 0."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(in_planes), nn.BatchNorm2d(planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = (None if in_planes == planes and stride == 1
                         else nn.Conv2d(in_planes, planes, 1, stride, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = torch.relu(self.bn1(x))
        out = self.conv2(torch.relu(self.bn2(self.conv1(activated))))
        return out + (x if self.shortcut is None else self.shortcut(activated))


class WideResNet(nn.Module):
    """WRN-depth-k for CIFAR (Zagoruyko & Komodakis 2016, as RobustBench defines it): a 3×3
    conv to 16 channels, three groups of (depth − 4)/6 blocks of 16k, 32k and 64k channels
    (strides 1, 2, 2), BN-ReLU and global average pooling: 64k features."""

    def __init__(self, depth: int, widen: int):
        super().__init__()
        blocks = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        for group, stride in enumerate((1, 2, 2), start=1):
            layers = [PreActBlock(widths[group - 1] if i == 0 else widths[group], widths[group],
                                  stride if i == 0 else 1) for i in range(blocks)]
            setattr(self, f"block{group}", nn.Sequential(*layers))
        self.bn = nn.BatchNorm2d(widths[3])
        self.feature_dim = widths[3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return torch.relu(self.bn(x)).mean(dim=(2, 3))


class Encoder(nn.Module):
    """`backbone` up to its average pool: [0, 1] images -> features (`feature_dim`: 512 for
    ResNet-18, 2048 for ResNet-50, 640 for the WideResNets).

    stem (ResNets) = "cifar": 3×3 conv, stride 1, no max-pool (the usual CIFAR ResNet, as in
    SimCLR's CIFAR experiments); "strided": the same conv with stride 2, 4× fewer FLOPs, for CPU
    profiles; "imagenet": torchvision's 7×7/2 conv and max-pool, 16× fewer FLOPs on 32×32. The
    WideResNets have their own CIFAR stem only. `stages` lists the encoder's parts from the
    input on (stem, then each residual stage), for partial fine-tuning to freeze.
    """

    def __init__(
        self,
        backbone: Backbone = "resnet18",
        stem: Stem = "cifar",
        mean: tuple[float, float, float] = CIFAR10_MEAN,
        std: tuple[float, float, float] = CIFAR10_STD,
    ):
        super().__init__()
        if backbone not in BACKBONES:
            raise RobustSSLError(f"unknown backbone {backbone!r}: choose one of "
                                 f"{', '.join(BACKBONES)}")
        if stem not in STEMS:
            raise RobustSSLError(f"unknown stem {stem!r}: choose one of {', '.join(STEMS)}")
        if backbone in WIDE and stem != "cifar":
            raise RobustSSLError(f"stem={stem!r}: {backbone} has the CIFAR stem only (3×3, "
                                 "stride 1); set stem: cifar, or choose a ResNet backbone")
        self.backbone, self.stem = backbone, stem
        self.normalize = Normalize(mean, std)
        if backbone in WIDE:
            self.net = WideResNet(*WIDE[backbone])
            self.feature_dim = self.net.feature_dim
            return
        net = (resnet18 if backbone == "resnet18" else resnet50)(weights=None)
        if stem != "imagenet":
            stride = 1 if stem == "cifar" else 2
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=stride, padding=1, bias=False)
            net.maxpool = nn.Identity()
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    @property
    def stages(self) -> list[nn.Module]:
        net = self.net
        if self.backbone in WIDE:  # the last BatchNorm belongs to the last stage
            return [net.conv1, net.block1, net.block2, nn.ModuleList([net.block3, net.bn])]
        return [nn.ModuleList([net.conv1, net.bn1]), net.layer1, net.layer2, net.layer3,
                net.layer4]

    @property
    def architecture(self) -> dict:
        """What a saved encoder must match to be loaded into this one."""
        return {"name": self.backbone, "stem": self.stem, "feature_dim": self.feature_dim}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))
