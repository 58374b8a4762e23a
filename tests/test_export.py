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
    torch.save({"state_dict": encoder.state_dict()}, tmp_path / "lightning.ckpt")
    with pytest.raises(CheckpointError, match="not a robust-ssl encoder export"):
        load_encoder(encoder, tmp_path / "lightning.ckpt")


def test_an_encoder_of_another_backbone_stops_before_loading(tmp_path):
    path = save_encoder(Encoder("resnet50", stem="imagenet"), tmp_path / "enc.pt")
    with pytest.raises(CheckpointError, match="'name': 'resnet50'.*'name': 'resnet18'"):
        load_encoder(Encoder(stem="imagenet"), path)
