"""Augmentation throughput: the suite's batched SimCLR views against kornia's batched pipeline
and torchvision.v2 applied image by image, all the same recipe.

Usage: python benchmarks/augment.py [--batch 256] [--seconds 5] [--device cpu]
Prints views/s for each (robust_ssl/data/augment.py says which one the suite uses and why).
"""

import argparse
import time

import kornia.augmentation as K
import torch
from torch import nn
from torchvision.transforms import v2

from robust_ssl.data.augment import SimCLRViews


def torchvision_views() -> v2.Compose:
    """The same recipe as SimCLRViews, one image at a time (v2 draws one parameter set a call)."""
    return v2.Compose([
        v2.RandomResizedCrop(32, scale=(0.08, 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(3, (0.1, 2.0))], p=0.5),
        v2.ToDtype(torch.float32, scale=True),
    ])


def kornia_views() -> nn.Module:
    """The same recipe with kornia's batched augmentations (the suite's choice until it measured
    its own faster)."""
    return nn.Sequential(
        K.RandomResizedCrop((32, 32), scale=(0.08, 1.0)),
        K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
        K.RandomGrayscale(p=0.2),
        K.RandomGaussianBlur((3, 3), (0.1, 2.0), p=0.5),
    )


def views_per_second(make_views, images: torch.Tensor, seconds: float) -> float:
    make_views(images)  # warm-up
    if images.is_cuda:
        torch.cuda.synchronize()
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        make_views(images)
        count += 2 * len(images)
    if images.is_cuda:
        torch.cuda.synchronize()
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    images = torch.randint(0, 256, (args.batch, 3, 32, 32), dtype=torch.uint8, device=args.device)
    per_image, kornia = torchvision_views(), kornia_views().to(args.device)

    def torchvision_pair(batch):
        return [torch.stack([per_image(image) for image in batch]) for _ in range(2)]

    def kornia_pair(batch):
        batch = batch.float() / 255
        return kornia(batch), kornia(batch)

    print(f"device={args.device} batch={args.batch} threads={torch.get_num_threads()}")
    for name, views in [("suite (batched, image_ops)", SimCLRViews().to(args.device)),
                        ("kornia (batched)", kornia_pair),
                        ("torchvision.v2 (per image)", torchvision_pair)]:
        print(f"{name:28s} {views_per_second(views, images, args.seconds):10,.0f} views/s")


if __name__ == "__main__":
    main()
