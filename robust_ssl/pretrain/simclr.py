"""SimCLR pretraining (Chen et al. 2020; the paper's section 3.1)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from robust_ssl.data.augment import SimCLRViews
from robust_ssl.pretrain.losses import nt_xent
from robust_ssl.models.backbone import ResNet18Encoder, Stem
from robust_ssl.models.heads import ProjectionHead
from robust_ssl.pretrain.pretrainer import Pretrainer


class SimCLRTask(nn.Module):
    """NT-Xent between the projections of two augmented views of each image.

    Both views go through the encoder as one batch, so BatchNorm sees 2N images.
    """

    name = "simclr"

    def __init__(self, projection_hidden_dim: int = 512, projection_dim: int = 128,
                 temperature: float = 0.5, gather_distributed: bool = True,
                 views: SimCLRViews | None = None):
        super().__init__()
        self.temperature, self.gather_distributed = temperature, gather_distributed
        self.projection = ProjectionHead(ResNet18Encoder.feature_dim, projection_hidden_dim,
                                         projection_dim)
        self.views = views or SimCLRViews()

    def loss(self, encode, images: torch.Tensor) -> torch.Tensor:
        view_a, view_b = self.views(images)
        z_a, z_b = self.projection(encode(torch.cat([view_a, view_b]))).chunk(2)
        return nt_xent(z_a, z_b, self.temperature, self.gather_distributed)


class SimCLR(Pretrainer):
    """The single-task SimCLR pretrainer.

    Defaults follow the paper where it speaks (ResNet-18, MLP head, exponentially decaying
    learning rate) and SimCLR's CIFAR recipe where it does not (τ = 0.5, 128-d projections).
    Optimiser: SGD with momentum 0.9, lr 0.12 at batch 256 and weight decay 5e-4, the rates of
    lightly's CIFAR-10 SimCLR benchmark, decayed exponentially to 1% over the run in place of
    their cosine.
    """

    def __init__(
        self,
        stem: Stem = "cifar",
        projection_hidden_dim: int = 512,
        projection_dim: int = 128,
        temperature: float = 0.5,
        optimizer: Literal["sgd", "adam"] = "sgd",
        lr: float = 0.12,
        weight_decay: float = 5e-4,
        momentum: float = 0.9,
        final_lr_ratio: float = 0.01,
        gather_distributed: bool = True,
        channels_last: bool = True,
        compile: bool = False,
        views: SimCLRViews | None = None,
    ):
        task = SimCLRTask(projection_hidden_dim, projection_dim, temperature,
                          gather_distributed, views)
        super().__init__([task], stem=stem, optimizer=optimizer, lr=lr,
                         weight_decay=weight_decay, momentum=momentum,
                         final_lr_ratio=final_lr_ratio, channels_last=channels_last,
                         compile=compile)
