import json

import pytest
import pytorch_lightning as pl
import torch

from robust_ssl.data.modules import LabeledDataModule
from robust_ssl.errors import RobustSSLError
from robust_ssl.evaluation.evaluator import AdversarialEvaluator
from robust_ssl.evaluation.records import subset_metrics, worst_case
from robust_ssl.evaluation.result import eps_name, read_records
from robust_ssl.evaluation.sanity import sanity_checks
from robust_ssl.finetune import FineTuner
from tests.conftest import save_image, write_image_folder


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


def evaluate(checkpoint, data_dir, output, test_limit=None, **options):
    evaluator = AdversarialEvaluator(str(checkpoint), str(output), **options)
    data = LabeledDataModule(data_dir=str(data_dir), eval_batch_size=5, test_limit=test_limit)
    quiet_trainer().test(evaluator, data)
    return json.loads(output.read_text())


def test_evaluation_writes_the_results_json(classifier_checkpoint, tmp_path):
    data_dir, checkpoint = classifier_checkpoint
    result = evaluate(checkpoint, data_dir, tmp_path / "results/run.json", pgd_steps=3,
                      sweep_epsilons=(2 / 255, 8 / 255), sweep_examples=6, attack_seed=4)
    assert set(result) >= {"run", "seed", "eps", "metrics", "subsets", "examples", "sanity",
                           "data_source", "config", "wall_time_s", "versions", "git_commit"}
    assert set(result["metrics"]) == {"clean", "fgsm@8/255", "pgd@8/255", "noise@8/255",
                                      "pgd@64/255", "worst@8/255", "fgsm@2/255", "pgd@2/255"}
    assert all(0 <= value <= 1 for value in result["metrics"].values())
    assert result["examples"] == {"test": 12, "sweep_subset": 6}
    sweep = result["subsets"]["sweep"]
    assert {"fgsm@2/255", "pgd@2/255", "worst@2/255", "fgsm@8/255", "worst@8/255"} <= set(sweep)
    # the sweep's ε = 2/255 ran on 6 images only: its metric is that subset's accuracy
    assert result["metrics"]["pgd@2/255"] == sweep["pgd@2/255"]
    assert result["run"] == "run" and result["seed"] == 4 and result["wall_time_s"] > 0
    assert result["data_source"].startswith("'cifar10', image folder (PNG")
    assert result["config"]["classifier"]["freeze"] == "full"
    assert result["versions"]["torch"] in (torch.__version__, torch.__version__.split("+")[0])
    # the sweep's subset numbers are never compared with the full set's clean accuracy
    assert "above_clean" not in result["sanity"]["failed"]
    # per image, beside the JSON: one bit per image and setting, the images' test indices
    records = read_records(tmp_path / "results/run.json")
    assert list(records.test_index) == list(range(12))
    for name in ("clean", "fgsm@8/255", "pgd@8/255", "fgsm@2/255"):
        ran, right = records.ran[name], records.right[name]
        assert ran.sum() == (6 if name == "fgsm@2/255" else 12)
        assert right[ran].mean() == pytest.approx(result["metrics"][name])
    assert (tmp_path / "results/run.records.npz").stat().st_size < 2000
    assert result["eps_space"] == "pixel"


def test_the_normalised_convention_runs_beside_the_pixel_one(classifier_checkpoint, tmp_path):
    data_dir, checkpoint = classifier_checkpoint
    result = evaluate(checkpoint, data_dir, tmp_path / "run.json", pgd_steps=2, large_eps=None,
                      sweep_epsilons=(), attacks=("fgsm", "pgd"),
                      normalized_attacks=("fgsm", "pgd"))
    assert set(result["metrics"]) == {"clean", "fgsm@8/255", "pgd@8/255", "worst@8/255",
                                      "fgsm-norm@8/255", "pgd-norm@8/255"}
    records = read_records(tmp_path / "run.json")
    assert records.ran["pgd-norm@8/255"].all()  # on every test image
    normalized = evaluate(checkpoint, data_dir, tmp_path / "n.json", pgd_steps=2,
                          large_eps=None, sweep_epsilons=(), attacks=("fgsm",),
                          eps_space="normalized", normalized_attacks=("fgsm",))
    assert set(normalized["metrics"]) == {"clean", "fgsm-norm@8/255", "worst-norm@8/255"}
    assert normalized["eps_space"] == "normalized"


class ChannelMeans(torch.nn.Module):
    """A 3-class classifier that predicts the image's brightest channel: deterministic, so the
    images each setting leaves right are known in advance."""

    num_classes = 3

    def forward(self, x):
        return x.mean((2, 3))


class Scripted:
    """Stands in for an attack: keeps its key, counts the images it is given and perturbs them
    by a fixed rule of the image and label alone."""

    def __init__(self, attack, perturb):
        self.metric_name, self.eps = attack.metric_name, attack.eps
        self.perturb, self.images = perturb, 0

    def __call__(self, model, x, y):
        self.images += len(x)
        return self.perturb(x, y)


def scripted_normalized_run(image_folder, output, pgd_on):
    """Normalised FGSM scripted to break every class-0 image (channels rolled), normalised PGD
    to break every class-2 one; the PGD's stand-in is returned with its count."""
    data_dir, _ = image_folder
    evaluator = AdversarialEvaluator.of_model(
        ChannelMeans(), str(output), attacks=("fgsm",), large_eps=None, sweep_epsilons=(),
        normalized_attacks=("fgsm", "pgd"), normalized_pgd_on=pgd_on)
    roll_where = lambda label: lambda x, y: torch.where(  # noqa: E731
        (y == label)[:, None, None, None], x.roll(1, dims=1), x)
    scripted = {"fgsm-norm@8/255": roll_where(0), "pgd-norm@8/255": roll_where(2)}
    evaluator.settings = [s._replace(attack=Scripted(s.attack, scripted[s.key]))
                          if s.key in scripted else s for s in evaluator.settings]
    data = LabeledDataModule(data_dir=str(data_dir), eval_batch_size=5)
    quiet_trainer().test(evaluator, data, verbose=False)
    return read_records(output), evaluator.settings[-1].attack


def test_the_normalised_pgd_attacks_only_what_clean_and_fgsm_left_right(image_folder, tmp_path):
    """AutoAttack's order: with `survivors` the PGD sees only the images right on clean and
    under the normalised FGSM, counts the rest lost, and so equals the per-image worst case of
    the three that attacking every image (`all`) gives; `all` reports PGD alone."""
    every, every_pgd = scripted_normalized_run(image_folder, tmp_path / "all.json", "all")
    cascade, cascade_pgd = scripted_normalized_run(image_folder, tmp_path / "casc.json",
                                                   "survivors")
    labels = every.right  # the same images, the same deterministic classifier
    clean, fgsm, pgd = (labels[k] for k in ("clean", "fgsm-norm@8/255", "pgd-norm@8/255"))
    survivors = clean & fgsm
    assert 0 < survivors.sum() < clean.sum() < len(clean)  # each stage drops some images
    assert every_pgd.images == len(clean) and cascade_pgd.images == survivors.sum()
    assert cascade.ran["pgd-norm@8/255"].all()  # every image has its verdict
    assert (cascade.right["pgd-norm@8/255"] == (clean & fgsm & pgd)).all()
    assert (cascade.right["pgd-norm@8/255"] != pgd).any()  # PGD alone: it keeps what FGSM broke
    assert (cascade.right["fgsm-norm@8/255"] == fgsm).all()  # the FGSM still runs on all


def test_worst_case_counts_an_image_only_if_every_attack_missed_it():
    """Two attacks that each break a different half of the images: each alone leaves 50%, the
    worst case 25%, not the smaller of the two accuracies; noise never counts; an attack that
    ran on a subset only counts on that subset."""
    every = torch.ones(4, dtype=torch.bool)
    records = {"fgsm@8/255": (every, torch.tensor([1, 0, 1, 0]).bool()),
               "pgd@8/255": (every, torch.tensor([1, 1, 0, 0]).bool()),
               "noise@8/255": (every, torch.tensor([0, 0, 0, 0]).bool()),
               "autoattack@8/255": (torch.tensor([1, 1, 0, 0]).bool(),
                                    torch.tensor([0, 1, 0, 0]).bool())}
    assert worst_case(records, 8 / 255, every) == 0.25
    first_two = torch.tensor([1, 1, 0, 0]).bool()
    assert worst_case(records, 8 / 255, first_two) == 0.0  # with AutoAttack: image 0 falls
    assert subset_metrics(records, first_two)["worst@8/255"] == 0.0


def sensitive_classifier(path) -> FineTuner:
    """A 10-class ResNet-18 with random weights whose BatchNorm statistics are those of random
    images: its predictions vary from image to image and break under small perturbations, so
    AutoAttack's first attack finishes the job (a barely trained one predicts one class for
    everything, resists, and keeps AutoAttack busy for minutes)."""
    torch.manual_seed(0)
    model = FineTuner(stem="imagenet", freeze="full", num_classes=10)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # a plain average over the calibration batch
    model.train()
    with torch.no_grad():
        model(torch.rand(64, 3, 32, 32))
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, path)
    return model.eval()


@pytest.mark.slow
def test_autoattack_runs_for_real_inside_the_evaluator(tmp_path):
    """Standard AutoAttack through pyautoattack on a small 10-class model and a few images,
    inside the evaluator as the table runs it (no stand-in). The test images are labeled with
    the model's own predictions, so every one is right before the attack; AutoAttack's accuracy,
    on its own subset, must not exceed PGD's there, and the worst case there includes it."""
    checkpoint = tmp_path / "classifier.ckpt"
    model = sensitive_classifier(checkpoint)
    data = tmp_path / "data" / "cifar10"
    classes = [f"class{i}" for i in range(10)]
    write_image_folder(data, {"train": 2}, classes=tuple(classes))
    images = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        predicted = model(images.float() / 255).argmax(1)
    for name in classes:
        (data / "test" / name).mkdir(parents=True)
    for i, (image, label) in enumerate(zip(images, predicted)):
        save_image(image, data / "test" / classes[label] / f"{i}.png")
    result = evaluate(checkpoint, tmp_path / "data", tmp_path / "aa.json", pgd_steps=5,
                      sweep_epsilons=(), autoattack_examples=6)
    on_subset = result["subsets"]["autoattack"]
    assert result["examples"]["autoattack_subset"] == 6 and on_subset["clean"] == 1.0
    assert result["metrics"]["autoattack@8/255"] == on_subset["autoattack@8/255"]
    assert on_subset["autoattack@8/255"] <= on_subset["pgd@8/255"]
    assert on_subset["worst@8/255"] <= on_subset["autoattack@8/255"]
    assert "autoattack_above_pgd" not in result["sanity"]["failed"]


def test_sanity_checks_flag_suspicious_numbers():
    good = {"clean": 0.8, "fgsm@8/255": 0.4, "pgd@8/255": 0.35, "noise@8/255": 0.78,
            "pgd@64/255": 0.0}
    assert sanity_checks(good, {}, 8 / 255, 64 / 255) == {"passed": True, "failed": [],
                                                            "warnings": []}
    cases = {  # one bad number each, and the check it must trip
        "above_clean": {"fgsm@8/255": 0.9, "pgd@8/255": 0.85, "noise@8/255": 0.95},
        "pgd_above_fgsm": {"pgd@8/255": 0.45},
        "fgsm_far_above_pgd": {"fgsm@8/255": 0.14, "pgd@8/255": 0.04, "noise@8/255": 0.8},
        "noise_beats_fgsm": {"noise@8/255": 0.3},
        "no_collapse": {"pgd@64/255": 0.2},
    }
    for check, change in cases.items():
        found = sanity_checks(good | change, {}, 8 / 255, 64 / 255)
        assert found["failed"] == [check], (check, found)
        assert not found["passed"] and len(found["warnings"]) == 1
    # within one point, a stronger attack above a weaker one is sampling noise, not a flag
    assert sanity_checks(good | {"pgd@8/255": 0.405}, {}, 8 / 255, 64 / 255)["passed"]
    # catastrophic overfitting: validation PGD collapsing late in training
    history = [{"epoch": 0, "fgsm_acc": 0.3, "pgd_acc": 0.25},
               {"epoch": 1, "fgsm_acc": 0.5, "pgd_acc": 0.02}]
    assert sanity_checks(good, {}, 8 / 255, 64 / 255, history)["failed"] == [
        "catastrophic_overfitting"]
    assert sanity_checks(good, {}, 8 / 255, 64 / 255, history[::-1])["passed"]
    # AutoAttack is compared with PGD on its own subset, never with the full-set PGD
    subset = {"clean": 0.7, "pgd@8/255": 0.3, "autoattack@8/255": 0.32}  # 2 points above
    assert sanity_checks(good, {"autoattack": subset}, 8 / 255, 64 / 255)["failed"] == [
        "autoattack_above_pgd"]
    subset["autoattack@8/255"] = 0.28  # below PGD there, though above... nothing on the full set
    assert sanity_checks(good | {"pgd@8/255": 0.25}, {"autoattack": subset}, 8 / 255,
                         64 / 255)["passed"]


def test_eps_names_read_as_written():
    assert eps_name(8 / 255) == "8/255" and eps_name(0.5 / 255) == "0.5/255"


def test_missing_checkpoint_and_unknown_attack_are_clear_errors(tmp_path, classifier_checkpoint):
    with pytest.raises(RobustSSLError, match="does not exist"):
        AdversarialEvaluator(str(tmp_path / "none.ckpt"), str(tmp_path / "out.json"))
    _, checkpoint = classifier_checkpoint
    with pytest.raises(RobustSSLError, match="unknown attack 'cw'"):
        AdversarialEvaluator(str(checkpoint), str(tmp_path / "o.json"), attacks=("fgsm", "cw"))
    with pytest.raises(RobustSSLError, match="eps=2.0 is outside"):
        AdversarialEvaluator(str(checkpoint), str(tmp_path / "o.json"), sweep_epsilons=(2.0,))
    with pytest.raises(RobustSSLError, match="normalized_pgd_on: 'some' is not one of"):
        AdversarialEvaluator(str(checkpoint), str(tmp_path / "o.json"), normalized_pgd_on="some")


def test_files_that_are_not_classifiers_are_one_clear_error(classifier_checkpoint, tmp_path):
    from robust_ssl.evaluation.classifier import load_classifier
    from robust_ssl.pretrain import Pretrainer, SimCLRTask

    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(RobustSSLError, match="cannot read classifier checkpoint .*empty.ckpt"):
        load_classifier(str(empty))
    pickled = tmp_path / "object.ckpt"
    torch.save({"anything": object()}, pickled)  # not loadable with weights_only: never run
    with pytest.raises(RobustSSLError, match="cannot read classifier checkpoint .*object.ckpt"):
        load_classifier(str(pickled))
    pretrained = tmp_path / "simclr.ckpt"
    torch.save({"state_dict": Pretrainer([SimCLRTask()], stem="imagenet").state_dict(),
                "hyper_parameters": {"stem": "imagenet"}}, pretrained)
    with pytest.raises(RobustSSLError, match="not a FineTuner checkpoint \\(a pretraining"):
        load_classifier(str(pretrained))


def test_a_classifier_of_other_classes_is_refused(classifier_checkpoint, tmp_path):
    _, checkpoint = classifier_checkpoint  # trained on 3 classes
    write_image_folder(tmp_path / "four", {"train": 4, "test": 2}, classes=("a", "b", "c", "d"))
    evaluator = AdversarialEvaluator(str(checkpoint), str(tmp_path / "out.json"))
    data = LabeledDataModule(dataset=str(tmp_path / "four"), data_dir=str(tmp_path))
    with pytest.raises(RobustSSLError, match="predicts 3 classes but the data .* has 4"):
        quiet_trainer().test(evaluator, data)
    assert not (tmp_path / "out.json").exists()


def test_corruptions_are_evaluated_with_per_image_records(image_folder, tmp_path):
    """Generated corruptions (no CIFAR-10-C in DATA_DIR): each corruption and severity a set
    of records over the test images; the metric is their mean; frost, without the
    generator's photographs, is left out and says why."""
    data_dir, _ = image_folder
    output = tmp_path / "run.json"
    evaluator = AdversarialEvaluator.of_model(ChannelMeans(), str(output), attacks=("fgsm",),
                                              large_eps=None, sweep_epsilons=(),
                                              corruptions=["fog", "frost", "contrast"])
    data = LabeledDataModule(data_dir=str(data_dir), eval_batch_size=5)
    quiet_trainer().test(evaluator, data, verbose=False)
    result = json.loads(output.read_text())
    summary = result["corruptions"]
    assert summary["kind"] == "generated" and "not CIFAR-10-C" in summary["source"]
    assert summary["evaluated"] == ["fog", "contrast"] and "frost" in summary["skipped"]
    assert summary["paired"] and summary["images"] == 12
    records = read_records(output)
    keys = sorted(k for k in records.ran if k.startswith("corruption/"))
    assert keys == sorted(f"corruption/{n}/{s}" for n in ("fog", "contrast") for s in range(1, 6))
    assert list(records.index_of("corruption/fog/3")) == list(records.test_index)
    each = [records.right[k].mean() for k in keys]
    assert result["metrics"]["corruption/mean"] == pytest.approx(sum(each) / len(each))
    assert summary["per_severity"]["2"] == pytest.approx(
        (records.right["corruption/fog/2"].mean() + records.right["corruption/contrast/2"].mean()) / 2)
    # the brightest-channel classifier, on what the generator made of each image
    fog = data.corrupted_test("fog", 5, "generated")
    expected = (fog.images.float().mean((2, 3)).argmax(1) == fog.labels).numpy()
    assert (records.right["corruption/fog/5"] == expected).all()


def test_corruption_settings_that_cannot_run_are_clear_errors(image_folder, tmp_path):
    with pytest.raises(RobustSSLError, match="unknown corruption 'rain'"):
        AdversarialEvaluator(None, str(tmp_path / "r.json"), corruptions=["rain"])
    with pytest.raises(RobustSSLError, match="corruption_source='cifar10c'"):
        AdversarialEvaluator(None, str(tmp_path / "r.json"), corruption_source="cifar10c")
    data_dir, _ = image_folder
    evaluator = AdversarialEvaluator.of_model(ChannelMeans(), str(tmp_path / "r.json"),
                                              attacks=("fgsm",), large_eps=None,
                                              sweep_epsilons=(), corruptions="all",
                                              corruption_source="published")
    with pytest.raises(RobustSSLError, match="corruption_source=published but"):
        quiet_trainer().test(evaluator, LabeledDataModule(data_dir=str(data_dir)), verbose=False)
    assert not (tmp_path / "r.json").exists()
