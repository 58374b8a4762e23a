"""Batched augmentations that run where the batch is (the GPU when there is one).

Each image of a batch draws its own random parameters and its own on/off decisions.
SimCLR's views use torchvision's formulas batched by hand (image_ops: several times faster
than kornia's on these small images, and checked against torchvision image by image); the
plain CIFAR crop-and-flip uses kornia, which is fast enough for it. Per image, kornia's batched
pipelines ran about 5x torchvision.transforms.v2 on a 2-core CPU (benchmarks/augment.py): v2
draws one set of parameters per call, so per-image randomness needs a loop.
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
from torch import nn

from robust_ssl.data import image_ops


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [0, 1]; float input is returned as it is."""
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    return images


class SimCLRViews(nn.Module):
    """Two independently augmented views of each image (SimCLR, Chen et al. 2020, appendix A).

    Random resized crop, horizontal flip, colour jitter (applied with probability
    `jitter_p`; its four steps in a random order per call, as torchvision's ColorJitter),
    random grayscale and 3x3 Gaussian blur, in that order; the paper adds the blur to
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
        self.size, self.crop_scale, self.flip_p = size, crop_scale, flip_p
        self.jitter, self.jitter_p = jitter, jitter_p
        self.grayscale_p, self.blur_sigma, self.blur_p = grayscale_p, blur_sigma, blur_p

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = to_unit_float(images)
        return self.view(images), self.view(images)

    def view(self, images: torch.Tensor) -> torch.Tensor:
        n, device = len(images), images.device

        def chance(p):
            return (torch.rand(n, device=device) < p).view(-1, 1, 1, 1)

        def uniform(low, high):
            return torch.empty(n, device=device).uniform_(low, high)

        if images.shape[-2:] != (self.size, self.size):
            raise ValueError(f"SimCLRViews(size={self.size}) got {tuple(images.shape[-2:])} images")
        boxes = image_ops.crop_boxes(n, self.size, self.size, self.crop_scale, device=device)
        x = image_ops.resized_crop(images, *boxes, flip=chance(self.flip_p).view(-1))
        x = torch.where(chance(self.jitter_p), self.colour_jitter(x, uniform), x)
        x = torch.where(chance(self.grayscale_p), image_ops.grayscale(x).expand_as(x), x)
        blurred = image_ops.gaussian_blur3(x, uniform(*self.blur_sigma))
        return torch.where(chance(self.blur_p), blurred, x)

    def colour_jitter(self, images: torch.Tensor, uniform) -> torch.Tensor:
        brightness, contrast, saturation, hue = self.jitter
        steps = [
            (image_ops.adjust_brightness, uniform(max(0.0, 1 - brightness), 1 + brightness)),
            (image_ops.adjust_contrast, uniform(max(0.0, 1 - contrast), 1 + contrast)),
            (image_ops.adjust_saturation, uniform(max(0.0, 1 - saturation), 1 + saturation)),
            (image_ops.adjust_hue, uniform(-hue, hue)),
        ]
        for index in torch.randperm(4).tolist():
            adjust, factor = steps[index]
            images = adjust(images, factor)
        return images


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
