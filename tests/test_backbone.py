import pytest
import torch
from torchvision.models import resnet18

from robust_ssl.errors import RobustSSLError
from robust_ssl.models.backbone import CIFAR10_MEAN, CIFAR10_STD, ResNet18Encoder


@pytest.mark.parametrize("stem", ["cifar", "strided", "imagenet"])
def test_features_are_512_dimensional(stem):
    encoder = ResNet18Encoder(stem=stem).eval()
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 512)


def test_cifar_stem_is_3x3_stride_1_without_maxpool():
    net = ResNet18Encoder("cifar").net
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, torch.nn.Identity) and isinstance(net.fc, torch.nn.Identity)


def test_stems_set_the_resolution_of_the_first_stage():
    sizes = {}
    for stem in ("cifar", "strided", "imagenet"):
        net = ResNet18Encoder(stem).net
        x = net.maxpool(net.relu(net.bn1(net.conv1(torch.rand(1, 3, 32, 32)))))
        sizes[stem] = x.shape[-1]
    assert sizes == {"cifar": 32, "strided": 16, "imagenet": 8}


def test_parameter_count_is_resnet18():
    count = sum(p.numel() for p in ResNet18Encoder().parameters())
    reference = sum(p.numel() for n, p in resnet18().named_parameters() if not n.startswith("fc"))
    assert count == reference - 64 * 3 * 7 * 7 + 64 * 3 * 3 * 3


def test_normalisation_happens_inside_the_model():
    encoder = ResNet18Encoder().eval()
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(encoder(x), encoder.net((x - mean) / std))


def test_gradients_reach_the_pixels():
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    ResNet18Encoder().eval()(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_architecture_record_and_unknown_stem():
    assert ResNet18Encoder("strided").architecture == {
        "name": "resnet18", "stem": "strided", "feature_dim": 512}
    with pytest.raises(RobustSSLError, match="unknown stem 'tiny'"):
        ResNet18Encoder("tiny")
