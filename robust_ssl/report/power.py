"""What would decide an inconclusive comparison: at its measured effect and spread, how many test
images (at the seeds it has) or how many seeds (at the images it has) would make its interval
leave the threshold.

A comparison's estimate varies with the test images drawn and with each side's training seeds.
Split its variance in two (a normal approximation of the paired bootstrap, report/bootstrap.py):
the images' part, var(d_i) / n of the per-image paired differences d_i (each side's mean over
its seeds), and the seeds' part, the sum over sides of var(seed accuracies) / seeds. The
interval's half-width at n' images and s' seeds is z·sqrt(V_images·n/n' + V_seeds·s/s'); it
decides when the half-width is below the distance from the estimate to the threshold. When
one part alone already spans that distance, more of the other cannot decide; when each part
does, it names the seeds that would decide with all of CIFAR-10's test images, if any would.
An estimate on the threshold itself is decided by no sample. This is a planning figure at the effect
measured, which is itself uncertain, not a guarantee: where it names no more images or seeds
than the comparison has, the interval sits at its edge, where this approximation and the
bootstrap part ways, and the statement says so rather than naming fewer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

TEST_SET = 10_000  # CIFAR-10's test images: more cannot be had


@dataclass(frozen=True)
class Needed:
    images: int | None  # at the seeds measured; None: more images alone cannot decide
    seeds: int | None  # per side, at the images measured; None: cannot, or unknown (one seed)
    image_se: float
    seed_se: float | None  # None: one seed on a side, so the seeds' spread is unknown
    distance: float  # estimate − threshold: no sample decides 0
    seeds_at_test_set: int | None = None  # per side, with all TEST_SET images; None: none would


def needed(sides: list[np.ndarray], scales: list[float], threshold: float, level: float
           ) -> Needed:
    """`sides`: (seeds × images) records of one side, or two sides paired by image, whose
    statistic is scale_0·acc_0 − scale_1·acc_1 (one side: scale_0·acc_0)."""
    signs = [1.0, -1.0][:len(sides)]
    per_image = sum(sign * scale * side.mean(axis=0)
                    for sign, scale, side in zip(signs, scales, sides))
    estimate = float(per_image.mean())
    images = per_image.shape[0]
    image_var = float(np.var(per_image, ddof=1)) / images if images > 1 else math.inf
    if all(side.shape[0] > 1 for side in sides):
        seed_var = sum(scale ** 2 * float(np.var(side.mean(axis=1), ddof=1)) / side.shape[0]
                       for scale, side in zip(scales, sides))
    else:
        seed_var = None
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    gap = (estimate - threshold) ** 2 / z ** 2  # the variance that would just decide
    seeds = min(side.shape[0] for side in sides)
    known_seed_var = seed_var or 0.0
    more_images = (math.ceil(image_var * images / (gap - known_seed_var))
                   if gap > known_seed_var else None)

    def seeds_beside(image_part: float) -> int | None:
        """The seeds that decide beside this images' part of the variance, if any do."""
        if seed_var is None or gap <= image_part:
            return None
        return math.ceil(seed_var * seeds / (gap - image_part))

    return Needed(more_images, seeds_beside(image_var), math.sqrt(image_var),
                  None if seed_var is None else math.sqrt(seed_var), estimate - threshold,
                  seeds_beside(image_var * images / max(images, TEST_SET)))


def statement(found: Needed, images: int, seeds: int) -> str:
    """One line for the claims report, e.g. '≈ 4,100 images (now 1,000); 6 seeds (now 3)'."""
    if abs(found.distance) < 1e-12:  # float sums of equal counts over seeds
        return "the estimate is the threshold itself: no number of images or seeds decides it"
    if found.images is None and found.seeds is None and found.seed_se is not None:
        both = (f"all {TEST_SET:,} test images and {found.seeds_at_test_set} seeds (now "
                f"{images:,} and {seeds})" if found.seeds_at_test_set is not None else
                f"not even all {TEST_SET:,} test images with any number of seeds")
        return f"neither more test images alone nor more seeds alone: {both}"
    if found.images is None:
        by_images = "more test images alone cannot"
    elif found.images > TEST_SET:
        by_images = f"≈ {found.images:,} images (more than the test set's {TEST_SET:,})"
    elif found.images <= images:
        by_images = f"about as many images as now ({images:,}): the interval is at its edge"
    else:
        by_images = f"≈ {found.images:,} images (now {images:,})"
    if found.seed_se is None:
        by_seeds = "seeds: unknown from one seed"
    elif found.seeds is None:
        by_seeds = "more seeds alone cannot"
    elif found.seeds <= seeds:
        by_seeds = f"about as many seeds as now ({seeds}): the interval is at its edge"
    else:
        by_seeds = f"{found.seeds} seeds (now {seeds})"
    return f"{by_images}; {by_seeds}"
