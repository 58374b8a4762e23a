import json

import pytest
import pytorch_lightning as pl
import torch

from robust_ssl.data.modules import LabeledDataModule
from robust_ssl.errors import RobustSSLError
from robust_ssl.evaluate import AdversarialEvaluator, eps_name, sanity_checks
from robust_ssl.finetune import FineTuner


def quiet_trainer(**kwargs):
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, **kwargs)


@pytest.fixture
def classifier_checkpoint(image_folder, tmp_path):
    data_dir, _ = image_folder
    model = FineTuner(stem="imagenet", freeze="full")  # the number of classes comes from the data
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=0)
    trainer.fit(model, LabeledDataModule(data_dir=str(data_dir), batch_size=16))
    path = tmp_path / "classifier.ckpt"
    trainer.save_checkpoint(path)
    return data_dir, path


def test_evaluation_writes_the_results_json(classifier_checkpoint, tmp_path, monkeypatch):
    """The AutoAttack wiring, with the attack replaced by the identity: real AutoAttack on a
    barely trained ResNet-18 runs its slowest attacks on every point (it is tested for real on
    a small model in test_attacks.py)."""
    calls = []

    def identity_attack(model, x, y, eps, seed=0):
        calls.append((len(x), eps))
        return x

    monkeypatch.setattr("robust_ssl.evaluate.autoattack", identity_attack)
    data_dir, checkpoint = classifier_checkpoint
    output = tmp_path / "results/run.json"
    evaluator = AdversarialEvaluator(str(checkpoint), str(output), pgd_steps=3,
                                     autoattack_examples=4)
    quiet_trainer().test(evaluator, LabeledDataModule(data_dir=str(data_dir), eval_batch_size=5))
    result = json.loads(output.read_text())
    assert set(result) >= {"run", "seed", "metrics", "examples", "sanity", "config",
                           "wall_time_s", "versions", "git_commit"}
    expected = {"clean", "fgsm@8/255", "pgd@8/255", "noise@8/255", "pgd@64/255",
                "clean@autoattack_subset", "autoattack@8/255"}
    assert set(result["metrics"]) == expected
    assert all(0 <= value <= 1 for value in result["metrics"].values())
    assert result["examples"] == {"test": 12, "autoattack": 4}
    assert calls == [(4, 8 / 255)]
    assert result["metrics"]["autoattack@8/255"] == result["metrics"]["clean@autoattack_subset"]
    assert result["run"] == "run" and result["wall_time_s"] > 0
    assert result["config"]["classifier"]["freeze"] == "full"
    assert result["config"]["data"]["dataset"] == "cifar10"
    assert result["versions"]["torch"] == torch.__version__.split("+")[0] or \
        result["versions"]["torch"] == torch.__version__
    assert isinstance(result["sanity"]["passed"], bool)
    assert isinstance(result["sanity"]["warnings"], list)


def test_sanity_checks_flag_suspicious_numbers():
    eps = (8 / 255,)
    good = {"clean": 0.8, "fgsm@8/255": 0.4, "pgd@8/255": 0.3, "noise@8/255": 0.78,
            "pgd@64/255": 0.0}
    assert sanity_checks(good, eps, 64 / 255) == {"passed": True, "warnings": []}
    bad = {"clean": 0.5, "fgsm@8/255": 0.3, "pgd@8/255": 0.6, "noise@8/255": 0.2,
           "pgd@64/255": 0.4}
    found = sanity_checks(bad, eps, 64 / 255)
    assert not found["passed"]
    text = " | ".join(found["warnings"])
    assert "above clean" in text and "above FGSM" in text
    assert "random noise" in text and "not near zero" in text


def test_eps_names_read_as_written():
    assert eps_name(8 / 255) == "8/255" and eps_name(0.5 / 255) == "0.5/255"


def test_missing_checkpoint_and_unknown_attack_are_clear_errors(tmp_path, classifier_checkpoint):
    with pytest.raises(RobustSSLError, match="does not exist"):
        AdversarialEvaluator(str(tmp_path / "none.ckpt"), str(tmp_path / "out.json"))
    _, checkpoint = classifier_checkpoint
    with pytest.raises(RobustSSLError, match="unknown attack 'cw'"):
        AdversarialEvaluator(str(checkpoint), str(tmp_path / "o.json"), attacks=("fgsm", "cw"))
    with pytest.raises(RobustSSLError, match="eps=2.0 is outside"):
        AdversarialEvaluator(str(checkpoint), str(tmp_path / "o.json"), epsilons=(2.0,))


def test_files_that_are_not_classifiers_are_one_clear_error(classifier_checkpoint, tmp_path):
    from robust_ssl.evaluate import load_classifier
    from robust_ssl.pretrain import SimCLR

    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(RobustSSLError, match="cannot read classifier checkpoint .*empty.ckpt"):
        load_classifier(str(empty))
    pickled = tmp_path / "object.ckpt"
    torch.save({"anything": object()}, pickled)  # not loadable with weights_only: never run
    with pytest.raises(RobustSSLError, match="cannot read classifier checkpoint .*object.ckpt"):
        load_classifier(str(pickled))
    pretrained = tmp_path / "simclr.ckpt"
    torch.save({"state_dict": SimCLR(stem="imagenet").state_dict(),
                "hyper_parameters": {"stem": "imagenet"}}, pretrained)
    with pytest.raises(RobustSSLError, match="not a FineTuner checkpoint \\(a pretraining"):
        load_classifier(str(pretrained))


def test_a_classifier_of_other_classes_is_refused(classifier_checkpoint, tmp_path):
    from tests.conftest import write_image_folder

    _, checkpoint = classifier_checkpoint  # trained on 3 classes
    write_image_folder(tmp_path / "four", {"train": 4, "test": 2}, classes=("a", "b", "c", "d"))
    evaluator = AdversarialEvaluator(str(checkpoint), str(tmp_path / "out.json"))
    data = LabeledDataModule(dataset=str(tmp_path / "four"), data_dir=str(tmp_path))
    with pytest.raises(RobustSSLError, match="predicts 3 classes but the data .* has 4"):
        quiet_trainer().test(evaluator, data)
    assert not (tmp_path / "out.json").exists()
