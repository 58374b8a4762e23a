import pytest
import torch

from robust_ssl.models.backbone import Encoder
from robust_ssl.models.export import CheckpointError, load_encoder, save_encoder


def test_round_trip_restores_weights_and_buffers(tmp_path):
    source = Encoder(stem="strided")
    with torch.no_grad():  # non-default BatchNorm statistics must survive the trip too
        source.net.bn1.running_mean.uniform_()
    path = save_encoder(source, tmp_path / "enc.pt", pretext="SimCLR", epochs=3)
    target = Encoder(stem="strided")
    metadata = load_encoder(target, path)
    assert metadata == {"pretext": "SimCLR", "epochs": 3}
    for (name, a), (_, b) in zip(source.state_dict().items(), target.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(source.eval()(x), target.eval()(x))


def test_architecture_mismatch_stops_before_loading(tmp_path):
    path = save_encoder(Encoder(stem="cifar"), tmp_path / "enc.pt")
    target = Encoder(stem="imagenet")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError, match="'stem': 'cifar'.*'stem': 'imagenet'"):
        load_encoder(target, path)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_missing_damaged_and_foreign_files_are_clear_errors(tmp_path):
    encoder = Encoder()
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(encoder, tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read encoder file"):
        load_encoder(encoder, tmp_path / "junk.pt")
    torch.save({"state_dict": {"tasks.0.head.weight": torch.zeros(2, 2)}}, tmp_path / "head.ckpt")
    with pytest.raises(CheckpointError, match="in no layout this suite reads"):
        load_encoder(encoder, tmp_path / "head.ckpt")


def test_a_lightning_checkpoint_of_the_suite_reads_through_the_layouts(tmp_path):
    """Not an export, but its encoder is in torchvision's names under `encoder.net.` with the
    normalisation beside it: read as the same weights and statistics."""
    torch.manual_seed(0)
    trained = Encoder(stem="imagenet", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    state = {f"encoder.{k}": v for k, v in trained.state_dict().items()}
    torch.save({"state_dict": state | {"tasks.0.head.weight": torch.zeros(2, 2)}},
               tmp_path / "last.ckpt")
    loaded = Encoder(stem="imagenet")
    assert load_encoder(loaded, tmp_path / "last.ckpt")["prefix"] == "encoder.net."
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_an_encoder_of_another_backbone_stops_before_loading(tmp_path):
    path = save_encoder(Encoder("resnet50", stem="imagenet"), tmp_path / "enc.pt")
    with pytest.raises(CheckpointError, match="'name': 'resnet50'.*'name': 'resnet18'"):
        load_encoder(Encoder(stem="imagenet"), path)
