"""The result owner: metric keys and ε names both ways, the writer and the reader, and the
validation-history contract the overfitting check reads."""

import json

from robust_ssl.evaluation.result import (budgets, eps_name, eps_value, key, parse_key,
                                          read_result, write_result)
from robust_ssl.evaluation.sanity import overfitting_collapse
from robust_ssl.finetune.history import ROBUST, validation_record


def test_keys_and_eps_names_round_trip():
    assert key("pgd", 8 / 255) == "pgd@8/255" and key("clean") == "clean"
    assert parse_key("pgd@8/255") == ("pgd", "8/255") and parse_key("clean") == ("clean", None)
    assert abs(eps_value(eps_name(2 / 255)) - 2 / 255) < 1e-12
    keys = ["clean", "fgsm@16/255", "pgd@2/255", "fgsm@2/255", "pgd@0.5/255"]
    assert budgets(keys) == ["0.5/255", "2/255", "16/255"]
    assert budgets(keys, "fgsm") == ["2/255", "16/255"]


def test_a_result_is_read_back_as_written(tmp_path):
    data = {"run": "cell-s0", "seed": 1, "metrics": {"clean": 0.5, "pgd@8/255": 0.25},
            "subsets": {"sweep": {"pgd@2/255": 0.4}}, "examples": {"test": 200},
            "sanity": {"warnings": ["w"]}, "data_source": "src",
            "pretraining": {"pretext": "simclr", "dataset": "cifar10", "epochs": 4}}
    path = tmp_path / "cell-s0.json"
    write_result(path, data)
    assert json.loads(path.read_text()) == data and not list(tmp_path.glob("*.partial"))
    result = read_result(path)
    assert (result.run, result.seed, result.test_examples, result.warnings) == (
        "cell-s0", 1, 200, ["w"])
    assert result.metric("pgd", 8 / 255) == 0.25 and result.sweep == {"pgd@2/255": 0.4}
    assert result.pretraining_set == "cifar10"
    write_result(path, {k: v for k, v in data.items() if k not in ("subsets", "pretraining")})
    assert read_result(path).sweep == data["metrics"] and read_result(path).pretraining_set is None


def test_the_validation_record_is_what_the_overfitting_check_reads():
    logged = {"val/acc": 0.6, "val/fgsm_acc": 0.5, "val/pgd_acc": 0.4, "train/loss": 1.0}
    assert validation_record(3, logged) == {"epoch": 3, "acc": 0.6, "fgsm_acc": 0.5,
                                            ROBUST: 0.4}
    history = [validation_record(e, {"val/pgd_acc": p, "val/fgsm_acc": 0.5})
               for e, p in enumerate((0.30, 0.32, 0.05))]
    assert "fell from 0.3200 (epoch 1) to 0.0500" in overfitting_collapse(history)
    assert overfitting_collapse(history[:2]) is None


def test_corrupted_images_keep_their_own_indices_in_the_records(tmp_path):
    """Published corruptions beside a test split of another order are other images: their
    records carry their own indices, which `index_of` hands out by key."""
    import numpy as np

    from robust_ssl.evaluation.records import corruption_accuracies
    from robust_ssl.evaluation.result import read_records, write_records

    every = np.ones(4, dtype=bool)
    attacks = {"clean": (every, np.array([1, 1, 0, 0], dtype=bool))}
    corrupted = {"corruption/fog/1": (np.ones(3, dtype=bool), np.array([1, 0, 0], dtype=bool)),
                 "corruption/fog/2": (np.ones(3, dtype=bool), np.array([1, 1, 1], dtype=bool)),
                 "corruption/snow/1": (np.ones(3, dtype=bool), np.array([0, 0, 0], dtype=bool))}
    write_records(tmp_path / "r.json", attacks, [10, 11, 12, 13], corrupted, [5, 7, 9])
    records = read_records(tmp_path / "r.json")
    assert list(records.index_of("clean")) == [10, 11, 12, 13]
    assert list(records.index_of("corruption/fog/2")) == [5, 7, 9]
    assert records.right["corruption/fog/1"].tolist() == [True, False, False]
    found = corruption_accuracies(corrupted)
    assert found["per_corruption"] == {"fog": (1 / 3 + 1) / 2, "snow": 0.0}
    assert found["per_severity"] == {"1": 1 / 6, "2": 1.0}
    assert found["mean"] == (1 / 3 + 1 + 0) / 3
    write_records(tmp_path / "plain.json", attacks, [10, 11, 12, 13])
    assert read_records(tmp_path / "plain.json").corruption_index is None
