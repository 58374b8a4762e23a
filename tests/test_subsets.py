import subprocess
import sys

import pytest
import torch

from robust_ssl.data.subsets import stratified_split
from robust_ssl.errors import DataError

# 10 classes of 200 images each, in a shuffled order.
LABELS = torch.arange(10).repeat_interleave(200)[torch.randperm(2000, generator=torch.Generator().manual_seed(1))]


@pytest.mark.parametrize("fraction,per_class", [(0.01, 2), (0.1, 18), (0.3, 54), (1.0, 180)])
def test_fraction_of_each_class_after_validation(fraction, per_class):
    train, val = stratified_split(LABELS, fraction, val_fraction=0.1, seed=0)
    assert torch.bincount(LABELS[train], minlength=10).tolist() == [per_class] * 10
    assert torch.bincount(LABELS[val], minlength=10).tolist() == [20] * 10


def test_train_and_validation_are_disjoint_and_sorted():
    train, val = stratified_split(LABELS, 1.0, val_fraction=0.2, seed=3)
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert len(train) + len(val) == len(LABELS)
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)


def test_same_seed_same_indices_other_seed_other_indices():
    a, va = stratified_split(LABELS, 0.1, 0.1, seed=7)
    b, vb = stratified_split(LABELS, 0.1, 0.1, seed=7)
    c, _ = stratified_split(LABELS, 0.1, 0.1, seed=8)
    assert torch.equal(a, b) and torch.equal(va, vb)
    assert not torch.equal(a, c)


def test_indices_do_not_depend_on_global_rng_or_process():
    """The split uses its own seeded generator: another process gives the very same indices."""
    torch.manual_seed(12345)
    here, _ = stratified_split(LABELS, 0.3, 0.1, seed=5)
    code = (
        "import torch; from robust_ssl.data.subsets import stratified_split;"
        "from tests.test_subsets import LABELS;"
        "print(stratified_split(LABELS, 0.3, 0.1, seed=5)[0].tolist())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(here.tolist())


def test_smaller_fraction_is_a_subset_of_larger_and_validation_is_shared():
    small, val_small = stratified_split(LABELS, 0.1, 0.1, seed=2)
    large, val_large = stratified_split(LABELS, 0.3, 0.1, seed=2)
    assert set(small.tolist()) <= set(large.tolist())
    assert torch.equal(val_small, val_large)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fraction_outside_unit_interval_is_an_error(fraction):
    with pytest.raises(DataError, match=rf"fraction={fraction} is outside \(0, 1\]"):
        stratified_split(LABELS, fraction)


def test_fraction_too_small_for_a_class_names_the_minimum():
    with pytest.raises(DataError, match="no training image .* at least 0.00278"):
        stratified_split(LABELS, 0.001, val_fraction=0.1)


@pytest.mark.parametrize("val_fraction", [-0.1, 1.0])
def test_bad_validation_fraction_is_an_error(val_fraction):
    with pytest.raises(DataError, match="val_fraction"):
        stratified_split(LABELS, 0.5, val_fraction=val_fraction)
