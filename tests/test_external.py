"""evaluate-model and export: a suite classifier exported and re-evaluated gives the suite's own
numbers; a normalised torchvision model is attacked in pixel space; each bad input is one error."""

import json

import pytest
import torch
import torchvision
from torch import nn

from robust_ssl import cli
from robust_ssl.attacks import pgd
from robust_ssl.evaluation.external import PixelClassifier, robustbench_record
from tests.test_evaluate import classifier_checkpoint, evaluate  # noqa: F401 (a fixture)

OPTIONS = dict(pgd_steps=3, sweep_epsilons=(2 / 255, 8 / 255), sweep_examples=6, attack_seed=3)
CLI_OPTIONS = ["--pgd-steps", "3", "--sweep-epsilons", "2/255", "8/255", "--sweep-examples", "6",
               "--seed", "3", "--device", "cpu", "--batch-size", "5"]


def evaluate_model(*args):
    cli.main(["evaluate-model", *args, *CLI_OPTIONS])


@pytest.mark.slow
def test_an_exported_cell_evaluates_as_the_suite_evaluated_it(classifier_checkpoint, tmp_path):
    """Both export formats, through the command line, against the evaluator on the checkpoint:
    every clean and attacked accuracy and every per-subset number identical, on the same capped
    test subset (the smoke profile's test_limit)."""
    data_dir, checkpoint = classifier_checkpoint
    suite = evaluate(checkpoint, data_dir, tmp_path / "suite.json", test_limit=9, **OPTIONS)
    assert suite["examples"]["test"] == 9  # of 12: the cap is in force
    cli.main(["export", str(checkpoint), str(tmp_path / "model.pt")])
    cli.main(["export", str(checkpoint), str(tmp_path / "weights.pt"), "--format", "state_dict"])
    evaluate_model("--torchscript", str(tmp_path / "model.pt"), "--data-dir", str(data_dir),
                   "--output", str(tmp_path / "scripted.json"), "--robustbench",
                   str(tmp_path / "rb.json"), "--test-limit", "9")
    # the state_dict runs in plain torchvision; the file names its constructor and normalisation
    evaluate_model("--state-dict", str(tmp_path / "weights.pt"), "--data-dir", str(data_dir),
                   "--output", str(tmp_path / "plain.json"), "--test-limit", "9")
    for name in ("scripted", "plain"):
        result = json.loads((tmp_path / f"{name}.json").read_text())
        assert result["metrics"] == suite["metrics"], name
        assert result["subsets"] == suite["subsets"] and result["examples"] == suite["examples"]
        assert result["data_source"] == suite["data_source"]
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert plain["config"]["classifier"]["mean"] == pytest.approx([0.4914, 0.4822, 0.4465])
    record = json.loads((tmp_path / "rb.json").read_text())
    assert record["clean_acc"] == f"{100 * suite['metrics']['clean']:.2f}"
    assert record["threat_model"] == "Linf" and record["eps"] == "8/255"
    assert record["autoattack_acc"] is None and record["dataset"] == "cifar10"
    assert record["n_examples"] == 9 and "PGD-3 " in record["footnote"]


def test_a_normalised_torchvision_model_is_attacked_in_pixel_space(tmp_path):
    """The normalisation sits inside the wrapper: the model sees (x - mean) / std, and PGD's
    perturbation of the pixels stays within ε and [0, 1] (in normalised units it would not)."""
    mean, std = (0.5, 0.4, 0.3), (0.1, 0.2, 0.25)
    model = torchvision.models.resnet18(num_classes=3).eval()
    wrapped = PixelClassifier(model, mean, std).eval()
    x = torch.rand(4, 3, 32, 32)
    normalised = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), model(normalised))
    y = torch.tensor([0, 1, 2, 0])
    adversarial = pgd(wrapped, x, y, 8 / 255, 2 / 255, steps=5)
    assert (adversarial - x).abs().max() <= 8 / 255 + 1e-6
    assert (adversarial - x).abs().max() > 7 / 255  # it moved: the gradient reached the pixels
    assert adversarial.min() >= 0 and adversarial.max() <= 1


@pytest.mark.slow
def test_a_torchvision_model_by_name_runs_end_to_end(image_folder, tmp_path):
    data_dir, _ = image_folder
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "w.pt")
    evaluate_model("--torchvision", "resnet18", "--weights", str(tmp_path / "w.pt"),
                   "--num-classes", "3", "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25",
                   "0.25", "--input-size", "64", "--data-dir", str(data_dir), "--output",
                   str(tmp_path / "tv.json"))
    result = json.loads((tmp_path / "tv.json").read_text())
    assert result["examples"]["test"] == 12
    assert result["config"]["classifier"]["architecture"] == "resnet18"
    assert result["config"]["classifier"]["input_size"] == 64
    # the cells' adversarial-example panel, beside the result
    assert (tmp_path / "tv.examples.png").read_bytes().startswith(b"\x89PNG")


class OnlyLarge(nn.Module):
    """A classifier that takes 64×64 images only."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 64 * 64, 3)

    def forward(self, x):
        return self.linear(x.flatten(1))


def only_large():
    return OnlyLarge()


def expect_error(capsys, message, *args):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate-model", *args, "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("robust-ssl: error:") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_each_bad_model_is_one_clear_error(image_folder, tmp_path, capsys):
    data_dir, _ = image_folder
    common = ["--data-dir", str(data_dir), "--output", str(tmp_path / "out.json")]
    torch.save(torchvision.models.resnet18(num_classes=5).state_dict(), tmp_path / "five.pt")
    expect_error(capsys, "predicts 5 classes but the data 'cifar10' has 3",
                 "--torchvision", "resnet18", "--weights", str(tmp_path / "five.pt"), *common)
    torch.save(OnlyLarge().state_dict(), tmp_path / "large.pt")
    constructor = ["--state-dict", str(tmp_path / "large.pt"), "--constructor",
                   "tests.test_external:only_large"]
    expect_error(capsys, "cannot take 3×32×32 inputs", *constructor, *common)
    cli.main(["evaluate-model", *constructor, "--input-size", "64", *common, *CLI_OPTIONS])
    assert json.loads((tmp_path / "out.json").read_text())["examples"]["test"] == 12
    expect_error(capsys, "cannot import 'no_such_package.models'", "--state-dict",
                 str(tmp_path / "large.pt"), "--constructor", "no_such_package.models:net",
                 "--output", str(tmp_path / "x.json"))
    expect_error(capsys, "has no function 'missing'", "--state-dict", str(tmp_path / "large.pt"),
                 "--constructor", "tests.test_external:missing", "--output", "x.json")
    (tmp_path / "notes.txt").write_text("not a model")
    expect_error(capsys, "is not a TorchScript file", "--torchscript",
                 str(tmp_path / "notes.txt"), *common)
    expect_error(capsys, "cannot read weights from", "--torchvision", "resnet18", "--weights",
                 str(tmp_path / "notes.txt"), *common)
    expect_error(capsys, "do not fit the model", "--torchvision", "resnet34", "--weights",
                 str(tmp_path / "five.pt"), "--num-classes", "5", *common)
    expect_error(capsys, "name the model one way", *common)
    assert not (tmp_path / "x.json").exists()


def test_export_refuses_what_is_not_a_classifier(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(SystemExit):
        cli.main(["export", str(tmp_path / "notes.txt"), str(tmp_path / "m.pt")])
    assert "cannot read classifier checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_the_robustbench_record_reads_the_result():
    result = {"eps": "8/255", "metrics": {"clean": 0.8123, "pgd@8/255": 0.5, "autoattack@8/255":
                                          0.4567},
              "examples": {"test": 10000, "autoattack_subset": 1000},
              "config": {"evaluator": {"pgd_steps": 50}}}
    record = robustbench_record(result, "mine", "cifar10", "resnet18")
    assert record["clean_acc"] == "81.23" and record["autoattack_acc"] == "45.67"
    assert record["n_examples"] == 1000 and record["architecture"] == "resnet18"
    assert "AutoAttack on 1000" in record["footnote"]
    assert "PGD-50 50.00%" in record["footnote"]  # the steps that ran, not a fixed 20


def saved_classifier(path, **options):
    from robust_ssl.finetune import FineTuner

    tuner = FineTuner(num_classes=3, **options).eval()
    torch.save({"state_dict": tuner.state_dict(), "hyper_parameters": dict(tuner.hparams)}, path)
    return tuner


def test_a_resnet50_exports_to_plain_torchvision_with_the_same_outputs(tmp_path):
    from robust_ssl.evaluation.external import (export_classifier, exported_settings,
                                                torchvision_classifier)

    torch.manual_seed(0)
    tuner = saved_classifier(tmp_path / "r50.ckpt", backbone="resnet50", stem="imagenet")
    export_classifier(tmp_path / "r50.ckpt", tmp_path / "weights.pt", format="state_dict")
    settings = exported_settings(tmp_path / "weights.pt")
    assert settings["constructor_args"] == {"num_classes": 3, "stem": "imagenet",
                                            "backbone": "resnet50"}
    plain = torchvision_classifier(**settings["constructor_args"]).eval()
    plain.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True)["state_dict"])
    x = torch.rand(2, 3, 32, 32)
    mean, std = (torch.tensor(settings[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        torch.testing.assert_close(plain((x - mean) / std), tuner(x))


def test_a_wide_resnet_exports_as_torchscript_and_refuses_the_torchvision_form(tmp_path):
    from robust_ssl.evaluation.external import ModelError, export_classifier

    torch.manual_seed(0)
    tuner = saved_classifier(tmp_path / "wrn.ckpt", backbone="wrn28_10")
    with pytest.raises(ModelError, match="torchvision does not define.*--format torchscript"):
        export_classifier(tmp_path / "wrn.ckpt", tmp_path / "weights.pt", format="state_dict")
    assert not (tmp_path / "weights.pt").exists()
    export_classifier(tmp_path / "wrn.ckpt", tmp_path / "model.pt")
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(tmp_path / "model.pt"))(x), tuner(x))
