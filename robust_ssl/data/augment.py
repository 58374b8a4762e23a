"""Batched augmentations that run where the batch is (the GPU when there is one).

Each image of a batch draws its own random parameters and its own on/off decisions. We use
kornia because, measured on a 2-core CPU with a batch of 256 (benchmarks/augment.py), its batched
SimCLR pipeline produced about 7,500 views/s against 1,400 for torchvision.transforms.v2 applied
image by image (v2 draws one set of parameters per call, so per-image randomness needs a loop).
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float input is returned as it is."""
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    return images


class SimCLRViews(nn.Module):
    """Two independently augmented views of each image (SimCLR, Chen et al. 2020, appendix A).

    Random resized crop, horizontal flip, colour jitter (applied with probability
    `jitter_p`), random grayscale and Gaussian blur, in that order; the paper adds the blur to
    SimCLR's CIFAR recipe, so it is on by default here.
    """

    def __init__(
        self,
        size: int = 32,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        flip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_sigma: tuple[float, float] = (0.1, 2.0),
        blur_p: float = 0.5,
    ):
        super().__init__()
        brightness, contrast, saturation, hue = jitter
        self.transform = nn.Sequential(
            K.RandomResizedCrop((size, size), scale=crop_scale),
            K.RandomHorizontalFlip(p=flip_p),
            K.ColorJitter(brightness, contrast, saturation, hue, p=jitter_p),
            K.RandomGrayscale(p=grayscale_p),
            K.RandomGaussianBlur((3, 3), blur_sigma, p=blur_p),
        )

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = to_unit_float(images)
        return self.transform(images), self.transform(images)


class CropFlip(nn.Module):
    """The standard CIFAR training augmentation: pad-4 random crop and horizontal flip."""

    def __init__(self, size: int = 32, padding: int = 4):
        super().__init__()
        self.transform = nn.Sequential(
            K.RandomCrop((size, size), padding=padding, padding_mode="reflect"),
            K.RandomHorizontalFlip(),
        )

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.transform(to_unit_float(images))
