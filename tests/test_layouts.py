"""Encoder files of other codebases (models/layouts.py), each written here in its layout (the same
key names and shapes as the repositories save, random weights): read into the suite's
backbone, they give the features of the same weights loaded into it directly."""

import argparse

import pytest
import torch
import torchvision

from robust_ssl.finetune import FineTuner
from robust_ssl.models.backbone import Encoder
from robust_ssl.models.export import CheckpointError, import_encoder, load_encoder
from robust_ssl.models.layouts import NORMALIZATIONS

IMAGENET = NORMALIZATIONS["imagenet"]


def torchvision_weights(backbone="resnet18", stem="cifar", seed=0) -> dict:
    """A torchvision encoder's state_dict (no fc) with random weights and BatchNorm statistics."""
    torch.manual_seed(seed)
    net = getattr(torchvision.models, backbone)(weights=None)
    if stem == "cifar":
        net.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    return {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}


def reference(weights: dict, normalization, backbone="resnet18", stem="cifar") -> Encoder:
    """The suite's backbone with `weights` loaded by hand, normalising as the file's model did."""
    encoder = Encoder(backbone, stem)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in normalization)
    encoder.load_state_dict({"normalize.mean": mean, "normalize.std": std}
                            | {f"net.{k}": v for k, v in weights.items()})
    return encoder.eval()


def is_batchnorm(key: str) -> bool:
    module = key.rsplit(".", 1)[0]
    return module.rsplit(".", 1)[-1].startswith("bn") or module.endswith("downsample.1")


def acl_keys(weights: dict, branches: int, kept: int, indexed: bool = True) -> dict:
    """ACL's `batch_norm_multiple` names: every BatchNorm as bn_list.<branch>, shortcuts as
    downsample.conv / downsample.bn; branch `kept` holds `weights`, the others noise."""
    out = {}
    for key, value in weights.items():
        plain = key.replace("downsample.0.", "downsample.conv.").replace("downsample.1.",
                                                                       "downsample.bn.")
        if not is_batchnorm(key):
            out[plain] = value
            continue
        module, name = plain.rsplit(".", 1)
        for branch in range(branches):
            other = value if branch == kept or not value.is_floating_point() else value + 1.0
            out[f"{module}.bn_list.{branch}.{name}" if indexed
                else f"{module}.bn_list.{name}"] = other
    return out


def features_equal(path, weights, normalization, **options):
    images = torch.rand(4, 3, 32, 32)
    loaded = Encoder("resnet18", "cifar")
    metadata = load_encoder(loaded, path, **options)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(images), reference(weights, normalization)(images))
    return metadata


def test_acls_dual_batchnorm_file_reads_its_adversarial_branch(tmp_path):
    """ACL / DynACL: {'epoch', 'state_dict', 'optim'}, bn_list.0 = normal, bn_list.1 = pgd, a
    projection head under fc., ImageNet statistics in normalize.mean / std."""
    weights = torchvision_weights()
    state = acl_keys(weights, branches=2, kept=1)
    state |= {"normalize.mean": torch.tensor(IMAGENET[0]), "normalize.std": torch.tensor(IMAGENET[1]),
              "fc.fc1.weight": torch.randn(512, 512), "fc.bn1.bn_list.0.weight": torch.ones(512)}
    torch.save({"epoch": 1000, "state_dict": state, "optim": {}}, tmp_path / "ACL_DS.pt")
    metadata = features_equal(tmp_path / "ACL_DS.pt", weights, IMAGENET)
    assert metadata["layout"] == "acl" and metadata["branch"] == "adversarial ('pgd')"
    assert metadata["pretext"] == "external" and len(metadata["source_sha256"]) == 64
    # the clean branch on request: the noise-shifted statistics, so other features
    clean = Encoder("resnet18", "cifar")
    load_encoder(clean, tmp_path / "ACL_DS.pt", branch="clean")
    assert not torch.equal(clean.net.bn1.running_mean, weights["bn1.running_mean"])


def test_advcls_three_branches_under_model_and_no_normalisation(tmp_path):
    """AdvCL: {'model', 'epoch', 'rng_state'}, branches normal / pgd / pgd_ce, and a model that
    takes raw pixels (no normalize buffers): read with no normalisation, branch 1."""
    weights = torchvision_weights(seed=1)
    state = acl_keys(weights, branches=3, kept=1) | {"fc.weight": torch.randn(10, 512)}
    torch.save({"model": state, "epoch": 1000, "rng_state": torch.get_rng_state()},
               tmp_path / "AdvCL.pt")
    metadata = features_equal(tmp_path / "AdvCL.pt", weights, NORMALIZATIONS["none"])
    assert metadata["branches"] == 3 and "none" in metadata["normalization"]


def test_acls_single_branch_files_in_both_spellings(tmp_path):
    """ACL without dual BatchNorm saves bn_list.0 only; a batch_norm_multiple without names
    saves bn_list.<param> with no index: both are the one branch there is."""
    weights = torchvision_weights(seed=2)
    for name, indexed in (("indexed.pt", True), ("bare.pt", False)):
        torch.save({"state_dict": acl_keys(weights, branches=1, kept=0, indexed=indexed)},
                   tmp_path / name)
        assert features_equal(tmp_path / name, weights,
                              NORMALIZATIONS["none"])["branch"] == "the only one"


def test_deacls_solo_learn_checkpoint_reads_the_student_backbone(tmp_path):
    """DeACL (solo-learn): a Lightning checkpoint whose state_dict holds backbone.* (with
    CIFAR-10 statistics as backbone.normalize.*), the teacher as momentum_backbone.*, a
    projector and a classifier, hyperparameters as an argparse.Namespace."""
    weights, teacher = torchvision_weights(seed=3), torchvision_weights(seed=4)
    cifar = NORMALIZATIONS["cifar10"]
    state = {f"backbone.{k}": v for k, v in weights.items()}
    state |= {f"momentum_backbone.{k}": v for k, v in teacher.items()}
    state |= {"backbone.normalize.mean": torch.tensor(cifar[0]),
              "backbone.normalize.std": torch.tensor(cifar[1]),
              "projector.0.weight": torch.randn(128, 512), "classifier.weight": torch.randn(10, 512)}
    torch.save({"epoch": 99, "global_step": 1000, "pytorch-lightning_version": "1.5.0",
                "state_dict": state, "hyper_parameters": argparse.Namespace(lr=0.5)},
               tmp_path / "DeACL.ckpt")
    metadata = features_equal(tmp_path / "DeACL.ckpt", weights, cifar)
    assert metadata["layout"] == "solo-learn" and metadata["prefix"] == "backbone."


def test_a_plain_torchvision_state_dict_with_or_without_a_module_prefix(tmp_path):
    weights = torchvision_weights(seed=5)
    head = {"fc.weight": torch.randn(10, 512), "fc.bias": torch.zeros(10)}
    torch.save(weights | head, tmp_path / "plain.pt")
    torch.save({f"module.{k}": v for k, v in (weights | head).items()}, tmp_path / "dp.pt")
    for name in ("plain.pt", "dp.pt"):
        metadata = features_equal(tmp_path / name, weights, IMAGENET, normalize="imagenet")
        assert metadata["layout"] == "torchvision"
    assert features_equal(tmp_path / "plain.pt", weights, NORMALIZATIONS["none"])[
        "normalization"].startswith("none")


def test_two_encoders_in_one_file_need_a_prefix(tmp_path):
    """DynACL's model.pt holds encoder_q and encoder_k: neither is a momentum copy by name,
    so the reader asks which; `prefix` chooses."""
    q, k = torchvision_weights(seed=6), torchvision_weights(seed=7)
    state = {f"encoder_q.{n}": v for n, v in acl_keys(q, 2, 1).items()}
    state |= {f"encoder_k.{n}": v for n, v in acl_keys(k, 2, 1).items()}
    torch.save({"state_dict": state}, tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="holds 2 encoders.*'encoder_k.'.*'encoder_q.'.*prefix"):
        load_encoder(Encoder("resnet18", "cifar"), tmp_path / "model.pt")
    features_equal(tmp_path / "model.pt", k, NORMALIZATIONS["none"], prefix="encoder_k.")


def test_an_unknown_file_names_the_layouts_tried_and_its_first_keys(tmp_path):
    torch.save({"weights": {"layer.0.w": torch.zeros(3)}, "step": 5}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match="in no layout.*tried: robust-ssl, acl, solo-learn, "
                       "torchvision.*top-level keys weights, step"):
        load_encoder(Encoder(), tmp_path / "odd.pt")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "flat.pt")
    with pytest.raises(CheckpointError, match="first keys: conv.weight"):
        load_encoder(Encoder(), tmp_path / "flat.pt")


def test_a_stem_or_width_mismatch_names_both_architectures(tmp_path):
    torch.save(torchvision_weights(stem="imagenet"), tmp_path / "imagenet-stem.pt")
    with pytest.raises(CheckpointError, match="'stem': 'imagenet'.*model is .*'stem': 'cifar'"):
        FineTuner(str(tmp_path / "imagenet-stem.pt"), stem="cifar")
    torch.save(torchvision_weights("resnet50"), tmp_path / "r50.pt")
    with pytest.raises(CheckpointError, match="'name': 'resnet50'.*2048.*model is .*'resnet18'"):
        import_encoder(tmp_path / "r50.pt", tmp_path / "out.pt", "resnet18", "cifar")
    narrow = torchvision_weights()
    narrow["layer4.1.conv2.weight"] = torch.zeros(512, 512, 1, 1)
    torch.save(narrow, tmp_path / "narrow.pt")
    with pytest.raises(CheckpointError, match=r"layer4.1.conv2.weight \(512, 512, 1, 1\) \(a "
                       r"resnet18 has \(512, 512, 3, 3\)\)"):
        load_encoder(Encoder(), tmp_path / "narrow.pt")
    assert not (tmp_path / "out.pt").exists()


class TrainingConfig:
    """An object of the saving code's own class: unpickling it would import and run code."""


def test_files_that_need_code_or_are_damaged_are_refused_not_run(tmp_path):
    torch.save({"state_dict": torchvision_weights(), "config": TrainingConfig()},
               tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="needs code to load"):
        load_encoder(Encoder(), tmp_path / "pickled.pt")
    torch.save(torchvision_weights(), tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cannot read encoder file"):
        load_encoder(Encoder(), tmp_path / "cut.pt")


def test_an_import_is_an_export_of_the_suite_with_its_provenance(tmp_path):
    weights = torchvision_weights(seed=8)
    torch.save({"state_dict": acl_keys(weights, 2, 1)}, tmp_path / "DynACL.pt")
    metadata = import_encoder(tmp_path / "DynACL.pt", tmp_path / "encoder.pt", "resnet18", "cifar")
    entry = torch.load(tmp_path / "encoder.pt", weights_only=True)
    assert entry["format"] == "robust-ssl-encoder" and entry["metadata"] == metadata
    assert metadata["source"] == "DynACL.pt" and metadata["layout"] == "acl"
    tuner = FineTuner(str(tmp_path / "encoder.pt"), stem="cifar", num_classes=10)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tuner.encoder.eval()(images),
                                   reference(weights, NORMALIZATIONS["none"])(images))
    assert tuner.pretraining == {"pretext": "external", "dataset": None, "epochs": None,
                                 "layout": "acl", "source": "DynACL.pt"}
