"""BYOL (Grill et al. 2020) as a pretext task: an online encoder + projector + predictor
regresses a momentum target's projection of the other view, without negatives.

The target (encoder + projector) is a MomentumCopy made from the pretrainer's shared encoder
(`bind`) and moved by an EMA after every optimiser step (`after_optimizer_step`), its momentum
rising from `base_momentum` to 1 on BYOL's cosine schedule. The views are SimCLR's, so that
Table 2's rows differ in their objective alone (BYOL's own recipe adds solarisation and an
asymmetric blur). Heads: lightly's ResNet-18 example sizes (1024 hidden, 256 out), BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn

from robust_ssl.data.augment import SimCLRViews
from robust_ssl.errors import RobustSSLError
from robust_ssl.models.heads import ProjectionHead
from robust_ssl.pretrain.losses import byol_loss
from robust_ssl.pretrain.momentum import MomentumCopy, cosine_momentum


class BYOLTask(nn.Module):
    """Symmetric BYOL loss: ℓ(p(v_a), z'(v_b)) + ℓ(p(v_b), z'(v_a)), ℓ = 2 − 2·cos."""

    name = "byol"

    def __init__(self, projection_hidden_dim: int = 1024, projection_dim: int = 256,
                 prediction_hidden_dim: int = 1024, base_momentum: float = 0.996,
                 views: SimCLRViews | None = None):
        super().__init__()
        if not 0 <= base_momentum <= 1:
            raise RobustSSLError(f"base_momentum={base_momentum} is outside [0, 1]")
        self.base_momentum = base_momentum
        self.dims = projection_hidden_dim, projection_dim, prediction_hidden_dim
        self.views = views or SimCLRViews()
        self.projection = self.prediction = self.target = None

    def online(self, encoder: nn.Module) -> nn.Module:
        """What the target follows: the shared encoder and this task's projector."""
        return nn.Sequential(encoder, self.projection)

    def bind(self, encoder: nn.Module) -> None:
        """Heads for the encoder's width, then the target as a copy of encoder + projector."""
        hidden, dim, prediction_hidden = self.dims
        self.projection = ProjectionHead(encoder.feature_dim, hidden, dim, batch_norm=True)
        self.prediction = ProjectionHead(dim, prediction_hidden, dim, batch_norm=True)
        self.target = MomentumCopy(self.online(encoder))

    def after_optimizer_step(self, encoder: nn.Module, step: int, total_steps: int) -> None:
        self.target.update(self.online(encoder), cosine_momentum(step, total_steps,
                                                                 self.base_momentum))

    def loss(self, encode, images: torch.Tensor) -> torch.Tensor:
        views = torch.cat(self.views(images))
        p_a, p_b = self.prediction(self.projection(encode(views))).chunk(2)
        with torch.no_grad():
            z_a, z_b = self.target(views).chunk(2)
        return byol_loss(p_a, z_b) + byol_loss(p_b, z_a)
