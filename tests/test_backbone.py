import pytest
import torch
from torchvision.models import resnet18

from robust_ssl.errors import RobustSSLError
from robust_ssl.models.backbone import CIFAR10_MEAN, CIFAR10_STD, Encoder


@pytest.mark.parametrize("stem", ["cifar", "strided", "imagenet"])
def test_features_are_512_dimensional(stem):
    encoder = Encoder(stem=stem).eval()
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_cifar_stem_is_3x3_stride_1_without_maxpool():
    net = Encoder(stem="cifar").net
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, torch.nn.Identity) and isinstance(net.fc, torch.nn.Identity)


def test_stems_set_the_resolution_of_the_first_stage():
    sizes = {}
    for stem in ("cifar", "strided", "imagenet"):
        net = Encoder(stem=stem).net
        x = net.maxpool(net.relu(net.bn1(net.conv1(torch.rand(1, 3, 32, 32)))))
        sizes[stem] = x.shape[-1]
    assert sizes == {"cifar": 32, "strided": 16, "imagenet": 8}


def test_parameter_count_is_resnet18():
    count = sum(p.numel() for p in Encoder().parameters())
    reference = sum(p.numel() for n, p in resnet18().named_parameters() if not n.startswith("fc"))
    assert count == reference - 64 * 3 * 7 * 7 + 64 * 3 * 3 * 3


def test_normalisation_happens_inside_the_model():
    encoder = Encoder().eval()
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(encoder(x), encoder.net((x - mean) / std))


def test_gradients_reach_the_pixels():
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    Encoder().eval()(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_architecture_record_and_unknown_stem():
    assert Encoder(stem="strided").architecture == {
        "name": "resnet18", "stem": "strided", "feature_dim": 512}
    with pytest.raises(RobustSSLError, match="unknown stem 'tiny'"):
        Encoder(stem="tiny")


# ---- the backbones beyond ResNet-18

def test_resnet50_is_torchvisions_with_the_stem_and_2048_features():
    from torchvision.models import resnet50

    encoder = Encoder("resnet50", stem="cifar").eval()
    assert encoder.feature_dim == 2048 and encoder(torch.rand(2, 3, 32, 32)).shape == (2, 2048)
    count = sum(p.numel() for p in encoder.parameters())
    reference = sum(p.numel() for n, p in resnet50().named_parameters() if not n.startswith("fc"))
    assert count == reference - 64 * 3 * 7 * 7 + 64 * 3 * 3 * 3


@pytest.mark.parametrize("backbone, parameters", [("wrn28_10", 36_479_194),
                                                  ("wrn34_10", 46_160_474)])
def test_wide_resnets_have_the_standard_size_and_640_features(backbone, parameters):
    """The published sizes of WRN-28-10 and WRN-34-10 with a 10-class layer (RobustBench's
    model cards: 36.5M and 46.2M parameters), counted here with a 640×10 + 10 layer."""
    encoder = Encoder(backbone).eval()
    assert encoder.feature_dim == 640
    assert sum(p.numel() for p in encoder.parameters()) + 640 * 10 + 10 == parameters
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 640)
    assert len(encoder.stages) == 4  # stem, then the three groups


def test_wide_resnet_blocks_are_pre_activation():
    block = Encoder("wrn28_10").net.block2[0]
    x = torch.randn(2, 160, 8, 8)
    torch.testing.assert_close(
        block(x), block.conv2(torch.relu(block.bn2(block.conv1(torch.relu(block.bn1(x))))))
        + block.shortcut(torch.relu(block.bn1(x))))


def test_unknown_backbone_and_a_stem_the_wide_resnets_lack_are_clear_errors():
    with pytest.raises(RobustSSLError, match="unknown backbone 'vit'"):
        Encoder("vit")
    with pytest.raises(RobustSSLError, match="CIFAR stem only"):
        Encoder("wrn28_10", stem="imagenet")
