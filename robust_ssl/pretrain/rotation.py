"""Rotation prediction (Gidaris et al. 2018): which of 0/90/180/270 degrees was an image turned?"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robust_ssl.data.augment import CropFlip


def rotations(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image turned by k·90° for k = 0..3 (4N images), and k as the label."""
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=images.device).repeat_interleave(len(images))
    return rotated, labels


class RotationTask(nn.Module):
    """A 4-way linear head on the encoder's features; the batch is crop-flipped first."""

    name = "rotation"

    def __init__(self):
        super().__init__()
        self.augment = CropFlip()
        self.head: nn.Linear | None = None

    def bind(self, encoder: nn.Module) -> None:
        self.head = nn.Linear(encoder.feature_dim, 4)

    def loss(self, encoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
        rotated, labels = rotations(self.augment(images))
        return F.cross_entropy(self.head(encoder(rotated)), labels)
