"""Augmentation throughput: kornia's batched SimCLR views against torchvision.v2 per image.

Usage: python benchmarks/augment.py [--batch 256] [--seconds 5] [--device cpu]
Prints views/s for each library; the suite uses kornia (robust_ssl/data/augment.py).
"""

import argparse
import time

import torch
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
    kornia_views = SimCLRViews().to(args.device)
    per_image = torchvision_views()

    def torchvision_pair(batch):
        return [torch.stack([per_image(image) for image in batch]) for _ in range(2)]

    print(f"device={args.device} batch={args.batch} threads={torch.get_num_threads()}")
    for name, views in [("kornia (batched)", kornia_views), ("torchvision.v2 (per image)",
                                                             torchvision_pair)]:
        print(f"{name:28s} {views_per_second(views, images, args.seconds):10,.0f} views/s")


if __name__ == "__main__":
    main()
