"""SimCLR pretraining (Chen et al. 2020; the paper's section 3.1) as a pretext task: the SimCLR
pretrainer is `Pretrainer(tasks=[SimCLRTask()])` (experiments/base/simclr.yaml).

Defaults follow SimCLR's CIFAR recipe where the paper is silent (τ = 0.5, 128-d projections);
the optimiser (SGD, momentum 0.9, lr 0.12 at batch 256, weight decay 5e-4: lightly's CIFAR-10
SimCLR benchmark, decayed exponentially to 1% over the run in place of their cosine) is the
Pretrainer's and the YAML's.
"""

from __future__ import annotations


import torch
from torch import nn

from robust_ssl.data.augment import SimCLRViews
from robust_ssl.pretrain.losses import nt_xent
from robust_ssl.models.heads import ProjectionHead


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
        self.dims = projection_hidden_dim, projection_dim
        self.views = views or SimCLRViews()
        self.projection: ProjectionHead | None = None

    def bind(self, encoder: nn.Module) -> None:
        self.projection = ProjectionHead(encoder.feature_dim, *self.dims)

    def loss(self, encode, images: torch.Tensor) -> torch.Tensor:
        view_a, view_b = self.views(images)
        z_a, z_b = self.projection(encode(torch.cat([view_a, view_b]))).chunk(2)
        return nt_xent(z_a, z_b, self.temperature, self.gather_distributed)
