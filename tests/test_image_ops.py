"""The batched image ops against torchvision applied image by image with the same parameters."""

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from robust_ssl.data import image_ops

N = 24


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (N, 3, 32, 32), generator=generator).float() / 255
    x[0, :, :8] = 0.5  # gray pixels: no hue
    x[1, 0] = x[1, 1]  # ties between the largest channels
    return x


def per_image(function, images, factors):
    return torch.stack([function(image, float(f)) for image, f in zip(images, factors)])


@pytest.mark.parametrize("ours, theirs, low, high", [
    (image_ops.adjust_brightness, TF.adjust_brightness, 0.6, 1.4),
    (image_ops.adjust_contrast, TF.adjust_contrast, 0.6, 1.4),
    (image_ops.adjust_saturation, TF.adjust_saturation, 0.6, 1.4),
    (image_ops.adjust_hue, TF.adjust_hue, -0.5, 0.5),
])
def test_colour_steps_match_torchvision(images, ours, theirs, low, high):
    factors = torch.empty(N).uniform_(low, high, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours(images, factors), per_image(theirs, images, factors),
                               atol=2e-6, rtol=0)


def test_grayscale_matches_torchvision(images):
    torch.testing.assert_close(image_ops.grayscale(images), TF.rgb_to_grayscale(images))


def test_resized_crop_matches_torchvision_crop_then_resize(images):
    torch.manual_seed(2)
    top, left, h, w = image_ops.crop_boxes(N, 32, 32, scale=(0.08, 1.0))
    flip = torch.arange(N) % 2 == 0
    ours = image_ops.resized_crop(images, top, left, h, w, flip)
    for i in range(N):
        theirs = TF.resized_crop(images[i], int(top[i]), int(left[i]), int(h[i]), int(w[i]),
                                 [32, 32], antialias=True)
        theirs = theirs.flip(-1) if flip[i] else theirs
        torch.testing.assert_close(ours[i], theirs, atol=1e-6, rtol=0)


def test_crop_boxes_follow_torchvisions_distribution():
    """Same areas and aspect ratios as RandomResizedCrop.get_params, in distribution."""
    torch.manual_seed(3)
    top, left, h, w = image_ops.crop_boxes(4000, 32, 32, scale=(0.08, 1.0))
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 32).all() and (left + w <= 32).all() and (h >= 1).all() and (w >= 1).all()
    theirs = torch.tensor([v2.RandomResizedCrop.get_params(torch.zeros(3, 32, 32), [0.08, 1.0],
                                                           [3 / 4, 4 / 3]) for _ in range(4000)])
    for ours, reference in ((h * w, theirs[:, 2] * theirs[:, 3]), (w / h, theirs[:, 3] / theirs[:, 2])):
        ours, reference = ours.float(), reference.float()
        assert abs(ours.mean() - reference.mean()) < 0.05 * reference.mean()
        assert abs(ours.std() - reference.std()) < 0.08 * reference.std()
    # Whole image where no draw fits: a scale range that never fits falls back to it.
    _, _, h, w = image_ops.crop_boxes(16, 32, 32, scale=(2.0, 3.0))
    assert (h == 32).all() and (w == 32).all()


def test_gaussian_blur_matches_torchvision(images):
    sigmas = torch.empty(N).uniform_(0.1, 2.0, generator=torch.Generator().manual_seed(4))
    theirs = torch.stack([TF.gaussian_blur(image, [3, 3], [float(s), float(s)])
                          for image, s in zip(images, sigmas)])
    torch.testing.assert_close(image_ops.gaussian_blur3(images, sigmas), theirs, atol=1e-6, rtol=0)
