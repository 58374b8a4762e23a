import pytest
import torch

from robust_ssl.data.augment import CropFlip, SimCLRViews, to_unit_float


@pytest.fixture
def batch():
    return torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))


def test_views_are_float_in_unit_range_with_input_shape(batch):
    view_a, view_b = SimCLRViews()(batch)
    for view in (view_a, view_b):
        assert view.shape == batch.shape and view.dtype == torch.float32
        assert view.min() >= 0 and view.max() <= 1


def test_two_views_of_an_image_differ(batch):
    view_a, view_b = SimCLRViews()(batch)
    assert all(not torch.allclose(a, b) for a, b in zip(view_a, view_b))


def test_each_image_draws_its_own_parameters():
    """The same image repeated across a batch comes out differently in every row."""
    image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    view, _ = SimCLRViews()(image.repeat(8, 1, 1, 1))
    distinct = {tuple(v.flatten()[:64].tolist()) for v in view}
    assert len(distinct) == 8


def test_on_off_draws_are_per_image():
    """With grayscale at p=0.5, a batch holds both gray and colour views."""
    image = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    views = SimCLRViews(crop_scale=(1.0, 1.0), flip_p=0, jitter_p=0, blur_p=0, grayscale_p=0.5)
    view, _ = views(image.repeat(64, 1, 1, 1))
    gray = [torch.allclose(v[0], v[1]) and torch.allclose(v[1], v[2]) for v in view]
    assert 0 < sum(gray) < 64


def test_all_off_is_identity(batch):
    views = SimCLRViews(crop_scale=(1.0, 1.0), flip_p=0, jitter_p=0, grayscale_p=0, blur_p=0)
    view_a, _ = views(batch)
    torch.testing.assert_close(view_a, batch.float() / 255, atol=1e-5, rtol=0)


def test_views_are_reproducible_under_a_seed(batch):
    torch.manual_seed(3)
    first = SimCLRViews()(batch)
    torch.manual_seed(3)
    second = SimCLRViews()(batch)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_crop_flip_keeps_shape_range_and_content(batch):
    out = CropFlip()(batch)
    assert out.shape == batch.shape and out.min() >= 0 and out.max() <= 1
    # A pad-4 crop keeps a 24×24 window of the image (possibly mirrored).
    original = batch.float() / 255
    for o, x in zip(out, original):
        inner = o[:, 4:28, 4:28]
        windows = [x[:, i:i + 24, j:j + 24] for i in range(9) for j in range(9)]
        windows += [w.flip(-1) for w in windows]
        assert any(torch.allclose(inner, w, atol=1e-6) for w in windows)


def test_to_unit_float():
    assert to_unit_float(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [0.0, 1.0]
    floats = torch.rand(3)
    assert to_unit_float(floats) is floats
