"""The YAML configs under experiments/ are the very files users and make run: they must build,
and run.py's merge of a profile's delta must be what LightningCLI makes of the same files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning.cli import LightningCLI

from robust_ssl.errors import RobustSSLError
from robust_ssl.runs import configs
from robust_ssl.finetune import FineTuner
from robust_ssl.models.backbone import Encoder
from robust_ssl.models.export import save_encoder
from tests.conftest import write_cifar_files, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
STAGES = sorted(p.stem for p in (ROOT / "experiments/base").glob("*.yaml"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The files the configs read: an encoder (fine-tuning) and a classifier (evaluation)."""
    folder = tmp_path_factory.mktemp("inputs")
    encoders = {stem: save_encoder(Encoder(stem=stem), folder / f"{stem}.pt")
                for stem in ("cifar", "imagenet")}
    classifier = FineTuner(stem="imagenet", num_classes=10)
    torch.save({"state_dict": classifier.state_dict(),
                "hyper_parameters": dict(classifier.hparams)}, folder / "classifier.ckpt")
    return {"encoders": encoders,
            "evaluate": ["--model.init_args.checkpoint", str(folder / "classifier.ckpt"),
                         "--model.init_args.output", str(folder / "out.json")]}


def subset_matches(expected: dict, actual: dict) -> list[str]:
    """What `expected` says that `actual` does not; a nested class (the FineTuner's attack)
    matches when its class and every argument the config gives match (defaults may add more)."""
    wrong = []
    for k, v in expected.items():
        got = actual.get(k)
        if k == "tasks":
            continue
        if isinstance(v, dict) and isinstance(got, dict):
            wrong += [f"{k}.{w}" for w in subset_matches(v, got)]
        elif got != v:
            wrong.append(f"{k}: {v!r} != {got!r}")
    return wrong


@pytest.mark.parametrize("profile", configs.profiles())
@pytest.mark.parametrize("stage", STAGES)
def test_each_profile_builds_and_matches_lightningclis_merge(profile, stage, inputs, tmp_path,
                                                             monkeypatch):
    """LightningCLI builds the model, data and trainer from base + delta (so every
    constructor check runs), and they carry the values of run.py's merged config."""
    builds_as_merged(profile, stage, (), inputs, tmp_path, monkeypatch)


PROTOCOL_PARTS = [(f"robustssl/{part}", "evaluate" if part == "evaluate" else "finetune")
                  for part in ("slf", "alf", "aff", "evaluate")]


@pytest.mark.parametrize("profile", configs.profiles())
@pytest.mark.parametrize("layer, stage", PROTOCOL_PARTS)
def test_each_protocol_part_builds_between_the_base_and_the_profile(profile, layer, stage,
                                                                    inputs, tmp_path, monkeypatch):
    """The RobustSSL protocol's YAMLs as a layer: base, protocol, profile, as LightningCLI
    merges three --config files."""
    files = configs.config_files(profile, stage, (layer,))
    assert files[1] == ROOT / "experiments/protocols" / f"{layer}.yaml"
    assert len(files) == (2 if profile == "paper" else 3)
    builds_as_merged(profile, stage, (layer,), inputs, tmp_path, monkeypatch)


def test_protocols_are_no_profile_and_an_unknown_layer_is_named():
    assert "protocols" not in configs.profiles()
    with pytest.raises(RobustSSLError, match="protocol layer 'robustssl/saf' unknown.*robustssl/slf"):
        configs.load("quick", "finetune", ("robustssl/saf",))
    alf = configs.load("quick", "finetune", ("robustssl/alf",))["model"]["init_args"]
    assert alf["attack"]["class_path"] == "robust_ssl.attacks.PGD" and alf["lr"] == 0.01
    assert alf["stem"] == "imagenet"  # the profile's delta over the protocol


def builds_as_merged(profile, stage, layers, inputs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["robust-ssl"])  # pytest's own arguments are not ours
    files = configs.config_files(profile, stage, layers)
    args = [part for path in files for part in ("--config", str(path))]
    merged = configs.load(profile, stage, layers)
    if stage == "finetune":
        stem = merged["model"]["init_args"]["stem"]
        args += ["--model.init_args.encoder_path", str(inputs["encoders"][stem])]
    args += inputs.get(stage, [])
    cli = LightningCLI(args=args, run=False, subclass_mode_model=True, subclass_mode_data=True)
    model_args = {k: v for k, v in merged["model"]["init_args"].items()
                  if k not in ("encoder_path", "checkpoint", "output")}
    assert not subset_matches(model_args, dict(cli.model.hparams))
    assert not subset_matches(merged["data"]["init_args"], dict(cli.datamodule.hparams))
    trainer = merged["trainer"]
    assert cli.trainer.max_epochs == trainer.get("max_epochs", cli.trainer.max_epochs)
    if "precision" in trainer:
        assert cli.trainer.precision == trainer["precision"]
    built = {type(c).__name__ for c in cli.trainer.callbacks}
    assert {c["class_path"].rsplit(".", 1)[-1] for c in trainer.get("callbacks", [])} <= built


def test_delta_merge_follows_jsonargparse_rules():
    base = {"trainer": {"max_epochs": 100, "callbacks": [{"class_path": "A"}, {"class_path": "B"}]},
            "model": {"class_path": "M", "init_args": {"lr": 0.1, "stem": "cifar"}}}
    delta = {"trainer": {"callbacks": [{"class_path": "A", "init_args": {"k": 1}}]},
             "model": {"init_args": {"stem": "imagenet"}}}
    out = configs.merged(base, delta)
    assert out["trainer"] == {"max_epochs": 100,
                              "callbacks": [{"class_path": "A", "init_args": {"k": 1}}]}
    assert out["model"] == {"class_path": "M", "init_args": {"lr": 0.1, "stem": "imagenet"}}
    other = configs.merged(base, {"model": {"class_path": "N", "init_args": {"x": 1}}})
    assert other["model"] == {"class_path": "N", "init_args": {"x": 1}}
    assert base["model"]["init_args"]["stem"] == "cifar"  # the base is not modified


def test_no_config_names_an_output_path():
    for path in (ROOT / "experiments").rglob("*.yaml"):
        text = path.read_text()
        for key in ("dirpath:", "save_dir:", "output:", "logger:"):
            assert key not in text, f"{path}: {key} (outputs are routed by run.py)"


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "robust_ssl", *args], cwd=cwd,
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def by_hand_chain(tmp_path, pretrain_task="simclr", model_args=(), evaluate_args=()):
    """The README's by-hand chain: base + smoke delta, outputs where the user points them;
    `model_args` go to the pretraining and the fine-tuning (a backbone must be the same in
    both). Returns the evaluation's result."""
    write_cifar_files(tmp_path / "data", "cifar100", train=100, test=20)
    write_image_folder(tmp_path / "data/cifar10", {"train": 10, "test": 4})
    base, smoke = ROOT / "experiments/base", ROOT / "experiments/smoke"

    def stage(name):
        return ["--config", str(base / f"{name}.yaml"), "--config", str(smoke / f"{name}.yaml")]

    pretrain = run_cli("fit", *stage(pretrain_task), *model_args, "--trainer.default_root_dir",
                       "pre", cwd=tmp_path)
    assert pretrain.returncode == 0, pretrain.stderr[-2000:]
    assert (tmp_path / "pre/encoder.pt").is_file()
    assert "kNN accuracy (cifar10, k=5) after epoch 2" in pretrain.stderr + pretrain.stdout
    finetune = run_cli("fit", *stage("finetune"), *model_args, "--trainer.default_root_dir", "ft",
                       "--model.init_args.encoder_path", "pre/encoder.pt", cwd=tmp_path)
    assert finetune.returncode == 0, finetune.stderr[-2000:]
    (checkpoint,) = (tmp_path / "ft").glob("**/checkpoints/last.ckpt")
    evaluate = run_cli("test", *stage("evaluate"), "--model.init_args.checkpoint",
                       str(checkpoint), "--model.init_args.output", "run.json", *evaluate_args,
                       cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    return json.loads((tmp_path / "run.json").read_text())


def test_smoke_pretrain_finetune_evaluate_chain_runs_by_hand(tmp_path):
    result = by_hand_chain(tmp_path)
    assert result["examples"]["test"] == 12 and "worst@8/255" in result["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("backbone, stem", [("resnet50", "imagenet"), ("wrn28_10", "cifar")])
def test_each_backbone_runs_the_chain_with_a_momentum_task(backbone, stem, tmp_path):
    """A smoke run of each kind of backbone beyond ResNet-18, pretraining with BYOL (the
    momentum copy of a wide network too); the evaluation's attacks cut to a couple of steps (CPU
    time), training on batches of 4 without Lightning's sanity-check validation (WRN-28-10's
    chain: 124 s with the smoke batch of 16, 79 s so). WRN-34-10 is WRN-28-10's class at another
    depth (its size and forward pass: test_backbone.py); its own chain cost CI 180 s."""
    model_args = ["--model.init_args.backbone", backbone, "--model.init_args.stem", stem,
                  "--data.init_args.batch_size", "4", "--trainer.num_sanity_val_steps", "0"]
    result = by_hand_chain(tmp_path, "byol", model_args, [
        "--model.init_args.pgd_steps", "2", "--model.init_args.large_eps_steps", "1",
        "--model.init_args.sweep_epsilons", "[]"])
    assert result["examples"]["test"] == 12 and "pgd@8/255" in result["metrics"]
    encoder = torch.load(tmp_path / "pre/encoder.pt", weights_only=True)
    assert encoder["architecture"]["name"] == backbone
    (checkpoint,) = (tmp_path / "ft").glob("**/checkpoints/last.ckpt")
    assert torch.load(checkpoint, weights_only=True)["hyper_parameters"]["backbone"] == backbone
