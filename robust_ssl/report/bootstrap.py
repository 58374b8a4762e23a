"""Paired bootstrap intervals over test images (and seeds) for accuracies and their differences,
and the verdict an interval gives a directional claim.

Each side of a comparison is one table cell: a (seeds × images) boolean array of whether each
test image survived, the images aligned across sides (the same test images, in the same order).
One bootstrap draw resamples the images once for every side (so the sides stay paired image by
image) and, independently for each side, its seeds (seeds are independent trainings, not
paired across cells); a side's accuracy in a draw is the mean over its drawn seeds and images.
With one seed the interval is over images alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

DRAWS = 2000
SEED = 0  # the bootstrap's own generator: a report is the same every time it is written


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    level: float  # e.g. 0.95, or 1 - 0.05 / k under Bonferroni


def accuracy_draws(right: np.ndarray, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One accuracy per draw: `right` is (seeds, n); `images` (draws, n) resampled indices."""
    seeds = right.shape[0]
    chosen = rng.integers(0, seeds, size=(images.shape[0], seeds))
    per_seed = right.astype(np.float64)[chosen[:, :, None], images[:, None, :]]  # draws×seeds×n
    return per_seed.mean(axis=(1, 2))


def interval(sides: list[np.ndarray], statistic: Callable[..., np.ndarray],
             level: float = 0.95, draws: int = DRAWS, seed: int = SEED) -> Interval:
    """Percentile interval of `statistic(*accuracies)` (vectorised over draws) for the sides'
    per-image records, paired over images."""
    n = sides[0].shape[1]
    if any(side.shape[1] != n for side in sides):
        raise ValueError("the sides must be records of the same test images")
    rng = np.random.default_rng(seed)
    images = rng.integers(0, n, size=(draws, n))
    values = statistic(*[accuracy_draws(side, images, rng) for side in sides])
    estimate = statistic(*[np.array([side.mean()]) for side in sides])[0]
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Interval(float(estimate), float(low), float(high), level)


def verdict(found: Interval, threshold: float = 0.0) -> str:
    """A claim that the quantity exceeds `threshold`: holds when the whole interval is above
    it, contradicted when the whole interval is below it, inconclusive otherwise."""
    if found.low > threshold:
        return "holds"
    if found.high < threshold:
        return "contradicted"
    return "inconclusive"
