"""benchmarks/baseline.py on tiny data: the standard recipe learns, both arms train on the
suite's own split and are read out the same way. Which arm reaches more is the benchmark's."""

import importlib.util
import math
from pathlib import Path

import torch

from tests.test_learning_benchmark import coloured_squares

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "baseline.py"
spec = importlib.util.spec_from_file_location("baseline_benchmark", PATH)
baseline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(baseline)


def test_the_standard_recipe_learns_learnable_data():
    split = coloured_squares(16, seed=0)
    shared = {"epochs": 8, "batch": 16, "lr": 0.05, "weight_decay": 5e-4, "stem": "imagenet",
              "limit_train_batches": None}
    model, losses = baseline.train_reference(split, shared, seed=0, device="cpu")
    assert len(losses) == 8 * 4 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-4:]) < sum(losses[:4])
    assert baseline.accuracies(model, coloured_squares(8, seed=1), "cpu")["clean"] > 50  # chance: 25


def test_the_reference_network_has_the_stem_of_the_profile():
    imagenet, cifar = (baseline.reference_network(stem, 10)[1] for stem in ("imagenet", "cifar"))
    assert imagenet.conv1.kernel_size == (7, 7) and isinstance(imagenet.maxpool, torch.nn.MaxPool2d)
    assert cifar.conv1.kernel_size == (3, 3) and cifar.conv1.stride == (1, 1)
    assert isinstance(cifar.maxpool, torch.nn.Identity)


def test_both_arms_train_on_the_suites_split_and_read_out_alike(table_data, tmp_path):
    shared = baseline.settings("smoke")
    split = baseline.training_split(shared, str(table_data))
    assert len(split.classes) == 3 and 0 < len(split.labels) < 3 * 64  # validation held out
    test = baseline.load_split("cifar10", "test", str(table_data))
    runs = {arm: baseline.run_arm(arm, "smoke", 0, str(table_data), split, test, "cpu", tmp_path)
            for arm in baseline.ARMS}
    assert (tmp_path / "suite-s0" / "classifier.ckpt").is_file()
    for run in runs.values():
        assert 0 <= run["clean"] <= 100 and 0 <= run["fgsm"] <= 100
    assert math.isfinite(runs["reference"]["first_epoch_loss"])
    text = baseline.summary({arm: [run] for arm, run in runs.items()})
    assert "reference − suite" in text
