"""Barlow Twins (Zbontar et al. 2021) as a pretext task: the cross-correlation of two views'
projections is pushed to the identity, with neither negatives nor a momentum network.

Projector: three linear layers with BatchNorm (the paper's 8192 wide for ResNet-50; 2048 here,
lightly's ResNet-18 example width); λ = 5·10⁻³ (the paper's 5.1·10⁻³, rounded as
lightly does). Views: SimCLR's, as every Table 2 row.
"""

from __future__ import annotations

import torch
from torch import nn

from robust_ssl.data.augment import SimCLRViews
from robust_ssl.models.heads import ProjectionHead
from robust_ssl.pretrain.losses import barlow_twins_loss


class BarlowTwinsTask(nn.Module):
    name = "barlow_twins"

    def __init__(self, projection_dim: int = 2048, lambda_: float = 5e-3,
                 gather_distributed: bool = True, views: SimCLRViews | None = None):
        super().__init__()
        self.lambda_, self.gather_distributed = lambda_, gather_distributed
        self.projection_dim = projection_dim
        self.views = views or SimCLRViews()
        self.projection: ProjectionHead | None = None

    def bind(self, encoder: nn.Module) -> None:
        self.projection = ProjectionHead(encoder.feature_dim, self.projection_dim,
                                         self.projection_dim, batch_norm=True, num_layers=3)

    def loss(self, encode, images: torch.Tensor) -> torch.Tensor:
        z_a, z_b = self.projection(encode(torch.cat(self.views(images)))).chunk(2)
        return barlow_twins_loss(z_a, z_b, self.lambda_, self.gather_distributed)
