"""The claims audit's 'to decide' figures (report/power.py): the variance parts agree with the
paired bootstrap, and the bootstrap decides at the number of images named, not at half of it."""

import numpy as np
import pytest

from robust_ssl.report import bootstrap, claims, power
from robust_ssl.report.claims_output import markdown
from tests.test_claims import verdict, write_tables


def paired(n: int, better: float, worse: float, seeds: int = 1, seed_shift: float = 0.0,
           seed: int = 0) -> list[np.ndarray]:
    """Two sides' (seeds × n) records; each seed of a side is right on a share moved by up to
    ±seed_shift."""
    rng = np.random.default_rng(seed)
    sides = []
    for share in (better, worse):
        shifts = np.linspace(-seed_shift, seed_shift, seeds)
        sides.append(np.stack([rng.random(n) < share + shift for shift in shifts]))
    return sides


def half_width(sides: list[np.ndarray], level: float = 0.95) -> float:
    found = bootstrap.interval(sides, lambda a, b: a - b, level)
    return (found.high - found.low) / 2


def test_the_image_part_is_the_bootstraps_spread_with_one_seed():
    sides = paired(2000, 0.52, 0.50)
    found = power.needed(sides, [1.0, 1.0], 0.0, 0.95)
    assert found.seed_se is None and found.seeds is None  # one seed: unknown
    assert 1.96 * found.image_se == pytest.approx(half_width(sides), rel=0.1)


def test_the_bootstrap_decides_at_the_images_named_and_not_at_half():
    sides = paired(1000, 0.53, 0.50, seed=3)
    assert bootstrap.verdict(bootstrap.interval(sides, lambda a, b: a - b)) == "inconclusive"
    found = power.needed(sides, [1.0, 1.0], 0.0, 0.95)
    assert 1000 < found.images < 10000

    def tiled(images: int) -> list[np.ndarray]:  # the same per-image spread, more images
        return [np.tile(side, (1, -(-images // 1000)))[:, :images] for side in sides]

    decided = bootstrap.interval(tiled(round(1.3 * found.images)), lambda a, b: a - b)
    undecided = bootstrap.interval(tiled(found.images // 2), lambda a, b: a - b)
    assert bootstrap.verdict(decided) == "holds"
    assert bootstrap.verdict(undecided) == "inconclusive"


def test_seed_noise_that_spans_the_gap_cannot_be_outrun_by_images():
    """Seeds 6 points apart on each side, a 5-point effect on 10,000 images: the images' part
    is small, the seeds' part spans the gap; only more seeds decide."""
    sides = paired(10_000, 0.55, 0.50, seeds=3, seed_shift=0.06)
    found = power.needed(sides, [1.0, 1.0], 0.0, 0.95)
    assert found.seed_se == pytest.approx(np.sqrt(2 * 0.06 ** 2 / 3), rel=0.1)
    assert found.images is None and 3 < found.seeds < 30
    assert power.statement(found, 10_000, 3) == (f"more test images alone cannot; "
                                                 f"{found.seeds} seeds (now 3)")


def test_where_each_part_alone_spans_the_gap_it_names_seeds_at_the_whole_test_set():
    """A 2-point effect on 1,000 images with seeds 3 points apart: images alone cannot (the
    seeds' part spans the gap), seeds alone cannot (so does the images' part); with all
    10,000 test images the images' part shrinks tenfold, and enough seeds decide."""
    sides = paired(1000, 0.52, 0.50, seeds=3, seed_shift=0.03, seed=5)
    found = power.needed(sides, [1.0, 1.0], 0.0, 0.95)
    assert found.images is None and found.seeds is None
    gap = (found.distance / 1.959964) ** 2
    expected = int(np.ceil(found.seed_se ** 2 * 3 / (gap - found.image_se ** 2 / 10)))
    assert found.seeds_at_test_set == expected > 3
    assert power.statement(found, 1000, 3) == (
        "neither more test images alone nor more seeds alone: all 10,000 test images and "
        f"{expected} seeds (now 1,000 and 3)")
    # a gap narrower than the images' part even at 10,000 images: no number of seeds helps
    tiny = power.needed(paired(1000, 0.505, 0.50, seeds=3, seed_shift=0.03, seed=5),
                        [1.0, 1.0], 0.0, 0.95)
    assert 0 < tiny.distance < 1.96 * tiny.image_se / np.sqrt(10)
    assert (tiny.images, tiny.seeds, tiny.seeds_at_test_set) == (None, None, None)
    assert power.statement(tiny, 1000, 3).endswith(
        "not even all 10,000 test images with any number of seeds")


def test_a_threshold_on_one_sides_accuracy():
    """One side against a fixed threshold (C3): the binomial standard error."""
    right = np.random.default_rng(1).random((1, 400)) < 0.36
    found = power.needed([right], [1.0], 0.33, 0.95)
    p = right.mean()
    assert found.image_se == pytest.approx(np.sqrt(p * (1 - p) / 399), rel=1e-6)
    assert found.images == pytest.approx(1.96 ** 2 * p * (1 - p) * 400 / 399
                                         / (p - 0.33) ** 2, rel=0.01)


def test_the_report_says_what_would_decide_each_inconclusive_comparison(tmp_path):
    write_tables(tmp_path, pretrained_right=0.2, supervised_right=0.6)
    found = claims.audit(tmp_path, "cifar100", (0,))
    c4 = verdict(found, "C4")
    undecided = [c for c in c4["comparisons"] if c["verdict"] == "inconclusive"]
    assert undecided and all("to_decide" in c for c in undecided)
    assert all("to_decide" not in c for c in verdict(found, "C1")["comparisons"])
    text = markdown(found, "smoke")
    assert "seeds: unknown from one seed" in text and "| to decide |" in text


def test_an_estimate_on_the_threshold_is_decided_by_no_sample():
    """Equal counts on both sides over three seeds: the effect is exactly zero (up to the
    float sum), so neither images nor seeds can move the interval off it."""
    rng = np.random.default_rng(4)
    better = rng.random((3, 1000)) < 0.5
    worse = better[:, rng.permutation(1000)]  # the same counts, other images
    found = power.needed([better, worse], [1.0, 1.0], 0.0, 0.95)
    assert found.images is None and found.seeds is None
    assert power.statement(found, 1000, 3) == (
        "the estimate is the threshold itself: no number of images or seeds decides it")


def test_at_the_intervals_edge_it_names_as_many_as_now_not_fewer():
    """A bootstrap interval that ends exactly at zero (inconclusive) while the normal
    approximation would already decide: its figure falls below the images measured, which
    the statement must not print as if fewer images would do."""
    sides = paired(1000, 0.545, 0.50, seed=23)
    found_interval = bootstrap.interval(sides, lambda a, b: a - b)
    assert found_interval.low == 0.0 and bootstrap.verdict(found_interval) == "inconclusive"
    found = power.needed(sides, [1.0, 1.0], 0.0, 0.95)
    assert found.images < 1000
    assert power.statement(found, 1000, 1) == (
        "about as many images as now (1,000): the interval is at its edge; "
        "seeds: unknown from one seed")
    # the seeds' figure the same way: three seeds whose spread already fits the gap
    spread = power.needed(paired(10_000, 0.53, 0.50, seeds=3, seed_shift=0.005),
                          [1.0, 1.0], 0.0, 0.95)
    assert spread.seeds <= 3
    assert power.statement(spread, 10_000, 3).endswith(
        "about as many seeds as now (3): the interval is at its edge")
