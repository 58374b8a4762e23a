"""Corrupted test images: the generator (data/corruption_ops.py) against the libraries CIFAR-10-C's
generator called (scipy, scikit-image, OpenCV, ImageMagick), its determinism and cache, and the
published files' layout (data/corruptions.py)."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from robust_ssl.data import corruption_ops as ops
from robust_ssl.data.corruptions import (check_corruptions, choose_source, frost_photographs,
                                         generated_set, published_set, read_published)
from robust_ssl.data.modules import LabeledDataModule
from robust_ssl.data.sources import Split
from robust_ssl.errors import DataError
from tests.conftest import write_cifar_files

cv2 = pytest.importorskip("cv2")
skimage = pytest.importorskip("skimage")
ndimage = pytest.importorskip("scipy.ndimage")
from skimage.color import hsv2rgb, rgb2hsv  # noqa: E402
from skimage.filters import gaussian  # noqa: E402


def smooth_images(n=24, seed=0) -> torch.Tensor:
    """uint8 images with structure (gradients) and texture, as photographs have both."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    base = torch.stack([x, y, (x + y) / 2])[None].repeat(n, 1, 1, 1)
    noise = torch.rand(n, 3, 32, 32, generator=generator)
    return ((0.7 * base + 0.3 * noise) * 255).to(torch.uint8)


def as_hwc(images: torch.Tensor) -> np.ndarray:
    return images[0].permute(1, 2, 0).double().numpy()


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    array = rng.random((32, 32, 3))
    return array, torch.from_numpy(array).permute(2, 0, 1)[None].double()


@pytest.mark.parametrize("sigma", [0.05, 0.25, 0.4, 1.5])
def test_gaussian_filter_is_skimages(image, sigma):
    array, tensor = image
    np.testing.assert_allclose(as_hwc(ops.gaussian_filter(tensor, sigma)),
                               gaussian(array, sigma=sigma, channel_axis=-1), atol=1e-6)
    np.testing.assert_allclose(
        ops.gaussian_filter(tensor[:, :1], sigma, mode="reflect", truncate=3)[0, 0].numpy(),
        gaussian(array[..., 0], sigma=sigma, mode="reflect", truncate=3), atol=1e-6)


@pytest.mark.parametrize("radius,alias", ops.SEVERITY["defocus_blur"])
def test_defocus_kernel_and_filter_are_opencvs(image, radius, alias):
    array, tensor = image
    grid = np.arange(-8, 9)
    x, y = np.meshgrid(grid, grid)
    disk = ((x ** 2 + y ** 2) <= radius ** 2).astype(np.float32)
    expected = cv2.GaussianBlur(disk / disk.sum(), ksize=(3, 3), sigmaX=alias)
    kernel = ops.disk_kernel(radius, alias)
    np.testing.assert_allclose(kernel.numpy(), expected, atol=1e-7)
    filtered = np.stack([cv2.filter2D(array[..., c], -1, expected) for c in range(3)], -1)
    np.testing.assert_allclose(as_hwc(ops.filter2d(tensor.float(), kernel)), filtered, atol=1e-5)


@pytest.mark.parametrize("factor", [1.0, 1.05, 1.25, 1.75, 2.25])
def test_clipped_zoom_is_scipys_order_one_zoom(image, factor):
    array, tensor = image
    side = int(np.ceil(32 / factor))
    top = (32 - side) // 2
    zoomed = ndimage.zoom(array[top:top + side, top:top + side], (factor, factor, 1), order=1)
    trim = (zoomed.shape[0] - 32) // 2
    np.testing.assert_allclose(as_hwc(ops.clipped_zoom(tensor, factor)),
                               zoomed[trim:trim + 32, trim:trim + 32], atol=1e-6)


@pytest.mark.parametrize("c", ops.SEVERITY["brightness"])
def test_brightness_is_skimages_hsv_value_shift(image, c):
    array, tensor = image
    hsv = rgb2hsv(array)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    np.testing.assert_allclose(as_hwc(ops.brightness(tensor, c, None)),
                               np.clip(hsv2rgb(hsv), 0, 1), atol=1e-6)


def test_the_elastic_transforms_warps_are_opencvs_and_scipys(image):
    array, tensor = image
    rng = np.random.default_rng(1)
    source = np.float32([[26, 26], [26, 6], [6, 6]])
    target = (source + rng.uniform(-2.5, 2.5, source.shape)).astype(np.float32)
    matrix = cv2.getAffineTransform(source, target)
    ours = ops.affine_matrices(torch.tensor(source[None]).double(),
                               torch.tensor(target[None]).double())[0]
    np.testing.assert_allclose(ours.numpy(), matrix, atol=1e-9)
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
    rows, columns = np.meshgrid(np.arange(32.0), np.arange(32.0), indexing="ij")
    mapped = inverse @ np.stack([columns.ravel(), rows.ravel(), np.ones(1024)])
    warped = ops.bilinear_sample(tensor.float(), torch.tensor(mapped[1].reshape(1, 32, 32)).float(),
                                 torch.tensor(mapped[0].reshape(1, 32, 32)).float(), edge=False)
    expected = cv2.warpAffine(array.astype(np.float32), matrix, (32, 32),
                              borderMode=cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(as_hwc(warped), expected, atol=1e-4)  # OpenCV's fixed point
    dx, dy = rng.uniform(-3, 3, (2, 32, 32))
    x, y, z = np.meshgrid(np.arange(32), np.arange(32), np.arange(3))
    where = (y + dy[..., None]).reshape(-1, 1), (x + dx[..., None]).reshape(-1, 1), z.reshape(-1, 1)
    expected = ndimage.map_coordinates(array, where, order=1, mode="reflect").reshape(array.shape)
    sampled = ops.bilinear_sample(tensor, torch.arange(32.0)[None, :, None] + torch.tensor(dy)[None],
                                  torch.arange(32.0)[None, None, :] + torch.tensor(dx)[None],
                                  edge=True)
    np.testing.assert_allclose(as_hwc(sampled), expected, atol=1e-6)


def naive_motion_blur(array: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick's MotionBlurImage formula, pixel by pixel: tap i reads the pixel at
    (x + ceil(i·cos θ − ½), y + ceil(i·sin θ − ½)), edges repeated, weights exp(−i²/2σ²)."""
    width = int(2 * np.ceil(radius) + 1)
    weights = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    out = np.zeros_like(array)
    theta = np.deg2rad(angle)
    for i, w in enumerate(weights):
        dx, dy = int(np.ceil(i * np.cos(theta) - 0.5)), int(np.ceil(i * np.sin(theta) - 0.5))
        for row in range(32):
            for column in range(32):
                out[row, column] += w * array[min(max(row + dy, 0), 31), min(max(column + dx, 0), 31)]
    return np.floor(out * 255 + 1e-6) / 255


def imagemagick():
    """The first real ImageMagick on PATH: a machine may have a `convert` that is something else
    (a stand-in that shadows /usr/bin/convert), so each candidate must say it is ImageMagick."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        for name in ("magick", "convert-im6.q16", "convert"):
            program = shutil.which(name, path=directory)
            if program is None:
                continue
            version = subprocess.run([program, "-version"], capture_output=True, text=True)
            if version.stdout.startswith("Version: ImageMagick"):
                return program
    return None


@pytest.mark.parametrize("angle", [-40.0, 17.0])
def test_motion_blur_is_imagemagicks_formula(image, angle):
    array, tensor = image
    radius, sigma = ops.SEVERITY["motion_blur"][2]
    ours = as_hwc(ops.magick_motion_blur(tensor, radius, sigma, torch.tensor([angle])))
    np.testing.assert_allclose(ours, naive_motion_blur(array, radius, sigma, angle), atol=1e-9)


@pytest.mark.parametrize("angle", [-40.0, 17.0])
def test_motion_blur_is_imagemagicks_output(image, angle, tmp_path):
    program = imagemagick()
    if program is None:
        pytest.skip("no ImageMagick on PATH (apt-get install imagemagick; .ci/run installs it)")
    array, _ = image
    radius, sigma = ops.SEVERITY["motion_blur"][2]
    pixels = (array * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    subprocess.run([program, str(tmp_path / "in.png"), "-motion-blur",
                    f"{radius}x{sigma}+{angle}", str(tmp_path / "out.png")], check=True)
    magick = np.asarray(Image.open(tmp_path / "out.png").convert("RGB")).astype(int)
    mine = np.rint(as_hwc(ops.magick_motion_blur(torch.from_numpy(pixels).permute(2, 0, 1)[None]
                                                  .double() / 255, radius, sigma,
                                                  torch.tensor([angle]))) * 255).astype(int)
    assert np.abs(mine - magick).max() <= 1  # its 16-bit quantum: 1/255 apart at most
    assert (mine == magick).mean() > 0.99


def test_the_glass_shuffle_swaps_in_the_generators_order():
    images = torch.rand(2, 3, 32, 32)
    visits = ops.glass_visits(32, 32, 1)
    shifts = torch.randint(-1, 1, (2, visits, 2), generator=torch.Generator().manual_seed(0))
    shuffled = ops.glass_shuffle(images, shifts, 1)
    for b in range(2):
        x = images[b].permute(1, 2, 0).numpy().copy()
        step = 0
        for h in range(31, 1, -1):
            for w in range(31, 1, -1):
                dx, dy = shifts[b, step].tolist()
                x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx].copy(), x[h, w].copy()
                step += 1
        np.testing.assert_array_equal(shuffled[b].permute(1, 2, 0).numpy(), x)


def test_the_plasma_fractal_spans_zero_to_one_per_map():
    maps = ops.plasma_fractal(3, 32, 2.0, torch.Generator().manual_seed(0))
    assert maps.shape == (3, 32, 32)
    assert torch.allclose(maps.amin(dim=(1, 2)), torch.zeros(3))
    assert torch.allclose(maps.amax(dim=(1, 2)), torch.ones(3))


FROST = [ops.shrunk_frost(torch.rand(3, 240, 300, generator=torch.Generator().manual_seed(i)))
         for i in range(ops.FROST_FILES)]
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate",
                 "jpeg_compression"}
# their strongest severity does not distort most on every image: CIFAR-10-C's glass blur
# trades blur for shuffling across severities, elastic's affine jitter shrinks as its
# displacement grows, frost's photographs differ
NOT_MONOTONE = {"glass_blur", "elastic_transform", "frost"}


@pytest.mark.parametrize("name", ops.CORRUPTIONS)
def test_every_corruption_runs_on_32x32_is_seeded_and_grows_with_severity(name):
    images = smooth_images()
    change = {}
    for severity in ops.SEVERITIES:
        out = ops.corrupt(images, name, severity, seed=0, frost_images=FROST)
        assert out.shape == images.shape and out.dtype == torch.uint8
        change[severity] = (out.float() - images.float()).abs().mean().item()
        assert change[severity] > 0.5, f"{name} at severity {severity} barely changes an image"
    again = ops.corrupt(images, name, 3, seed=0, frost_images=FROST)
    other = ops.corrupt(images, name, 3, seed=1, frost_images=FROST)
    assert torch.equal(again, ops.corrupt(images, name, 3, seed=0, frost_images=FROST))
    assert torch.equal(again, other) == (name in DETERMINISTIC)
    if name not in NOT_MONOTONE:
        assert change[5] > change[1]


def test_frost_without_its_photographs_and_unknown_names_are_refused():
    with pytest.raises(ValueError, match="frost needs the generator's frost photographs"):
        ops.corrupt(smooth_images(2), "frost", 1)
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        ops.corrupt(smooth_images(2), "rain", 1)
    with pytest.raises(DataError, match="unknown corruption 'rain'"):
        check_corruptions(["fog", "rain"])
    assert check_corruptions("all") == ops.CORRUPTIONS and check_corruptions("none") == ()
    assert check_corruptions(["fog", "contrast"]) == ("fog", "contrast")


def write_published(folder, images: torch.Tensor, labels, names=("fog", "contrast")):
    """The published layout: <corruption>.npy (5·N, 32, 32, 3) uint8, labels.npy (5·N)."""
    folder.mkdir(parents=True)
    for name in names:
        stacked = torch.cat([ops.corrupt(images, name, s) for s in ops.SEVERITIES])
        np.save(folder / f"{name}.npy", stacked.permute(0, 2, 3, 1).numpy())
    np.save(folder / "labels.npy", np.tile(np.asarray(labels, dtype=np.uint8), 5))


def test_published_files_read_by_severity_and_pair_with_cifar_files(tmp_path):
    """A test split from torchvision's CIFAR files has CIFAR-10-C's order: the images
    evaluated (a stratified subset) pair with the same positions of each severity."""
    written = write_cifar_files(tmp_path, "cifar10", train=100, test=60)
    test_images = torch.from_numpy(written["test"][0]).reshape(-1, 3, 32, 32)
    write_published(tmp_path / "CIFAR-10-C", test_images, written["test"][1])
    images, labels = read_published(tmp_path / "CIFAR-10-C", "fog", 4)
    assert torch.equal(images, ops.corrupt(test_images, "fog", 4))
    assert labels.tolist() == written["test"][1]
    data = LabeledDataModule(data_dir=str(tmp_path), test_fraction=0.5)
    data.setup("test")
    found = data.corrupted_test("contrast", 2, "published")
    assert found.paired and torch.equal(found.index, data.test_index)
    assert torch.equal(found.images, ops.corrupt(test_images, "contrast", 2)[data.test_index])
    assert choose_source("auto", tmp_path, "cifar10") == "published"
    assert choose_source("generated", tmp_path, "cifar10") == "generated"


def test_published_files_of_another_order_are_evaluated_unpaired(tmp_path):
    """An image folder's test split is not in CIFAR-10-C's order: its own stratified subset of
    the published images, by their labels, marked unpaired."""
    labels = torch.arange(40) % 4
    test = Split(smooth_images(40), labels.flip(0), ("a", "b", "c", "d"))
    write_published(tmp_path / "CIFAR-10-C", smooth_images(40, seed=3), labels)
    found = published_set(tmp_path / "CIFAR-10-C", "fog", 1, test, torch.arange(40), 0.5, None, 0)
    assert not found.paired and len(found.index) == 20
    assert torch.bincount(found.labels).tolist() == [5, 5, 5, 5]


def test_a_published_folder_missing_or_malformed_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="corruption_source=published but .*CIFAR-10-C.* no labels"):
        choose_source("published", tmp_path, "cifar10")
    assert choose_source("auto", tmp_path, "cifar10") == "generated"
    folder = tmp_path / "CIFAR-10-C"
    write_published(folder, smooth_images(10), [0] * 10, names=("fog",))
    with pytest.raises(DataError, match="no snow.npy"):
        read_published(folder, "snow", 1)
    np.save(folder / "fog.npy", np.zeros((7, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="not the published layout"):
        read_published(folder, "fog", 1)


def test_generated_corruptions_are_cached_by_content_and_rebuilt_when_damaged(tmp_path):
    test = Split(smooth_images(12), torch.arange(12) % 3, ("a", "b", "c"))
    first = generated_set(test, torch.arange(12), "shot_noise", 3, 0, tmp_path, None)
    cached = list((tmp_path / ".cache").glob("corrupted-shot_noise-3-*.pt"))
    assert len(cached) == 1 and torch.equal(torch.load(cached[0]), first.images)
    assert torch.equal(generated_set(test, torch.arange(12), "shot_noise", 3, 0, tmp_path,
                                     None).images, first.images)
    cached[0].write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="ignoring unreadable cache file"):
        again = generated_set(test, torch.arange(12), "shot_noise", 3, 0, tmp_path, None)
    assert torch.equal(again.images, first.images) and first.paired
    other = generated_set(test, torch.arange(12), "shot_noise", 3, 1, tmp_path, None)
    assert not torch.equal(other.images, first.images)  # another seed, another file
    assert len(list((tmp_path / ".cache").glob("corrupted-*.pt"))) == 2


def test_frost_photographs_are_read_from_the_data_directory(tmp_path):
    assert frost_photographs(tmp_path) is None
    (tmp_path / "frost").mkdir()
    for i in range(1, ops.FROST_FILES + 1):
        Image.fromarray(np.full((400, 500, 3), 40 * i, dtype=np.uint8)).save(
            tmp_path / "frost" / f"frost{i}.{'png' if i < 4 else 'jpg'}")
    photos = frost_photographs(tmp_path)
    assert len(photos) == 5 and photos[0].shape == (3, 80, 100)  # a fifth, as the generator
