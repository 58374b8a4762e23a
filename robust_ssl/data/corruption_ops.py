"""The 15 common corruptions of CIFAR-10-C (Hendrycks & Dietterich 2019), generated for a batch.

Why written here: the package the field uses, `imagecorruptions` 1.1.2 (2020), does not import
with today's setuptools (it needs `pkg_resources`) and calls `np.float_` and skimage's
removed `multichannel`; it also carries ImageNet-C's parameters, made for 224×224 images and
far too strong on 32×32 ones. These functions follow instead the generator that made
CIFAR-10-C, `ImageNet-C/create_c/make_cifar_c.py` of hendrycks/robustness, with its CIFAR
parameters (`SEVERITY` below, the same numbers), its order of operations and its uint8
truncation. What differs, so that numbers from here are never CIFAR-10-C's: the random draws
(a seeded torch generator, not the unseeded NumPy state it used); salt-and-pepper noise as
today's skimage draws it (each value flipped with probability `amount`, where the 2018 skimage
drew a fixed count of coordinates); ImageMagick's motion blur (snow, motion blur) and OpenCV's
filters re-implemented by their published formulas (kernel, offsets, borders), not called;
frost needs the generator's own frost photographs (`frost_images`), which this suite does not
ship.

Images are float (B, 3, H, W) in [0, 1]; each function returns float in [0, 1] before the
final uint8 step (`corrupt`), which truncates as the generator's `np.uint8` did. Random
parameters are drawn for the whole batch from one generator, so a batch's result does not
depend on how it is chunked.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
               "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
               "elastic_transform", "pixelate", "jpeg_compression")
SEVERITIES = (1, 2, 3, 4, 5)
# make_cifar_c.py's parameters, severity 1 to 5
SEVERITY = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "shot_noise": (500, 250, 100, 75, 50),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "defocus_blur": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
    "glass_blur": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
    "motion_blur": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
    "zoom_blur": tuple(np.arange(1, top, 0.01) for top in (1.06, 1.11, 1.16, 1.21, 1.26)),
    "snow": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
             (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
             (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
    "frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06),
                          (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),  # × the image size
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80, 65, 58, 50, 40),
}
FROST_FILES = 5  # the generator draws among frost1..frost5 (np.random.randint(5))
FROST_SCALE = 0.2  # and shrinks each photograph to a fifth first
GRAY = (0.299, 0.587, 0.114)  # OpenCV's RGB2GRAY


def uniform(shape, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator) * (high - low) + low


# ---- filters, as the generator's libraries define them ------------------------------------

def reflect_index(index: torch.Tensor, size: int, edge: bool) -> torch.Tensor:
    """Indices outside 0..size-1 mirrored back: `edge` True repeats the edge sample (scipy's
    and skimage's 'reflect', d c b a | a b c d), False does not (OpenCV's REFLECT_101)."""
    period = 2 * size if edge else 2 * size - 2
    index = torch.remainder(index, period)
    mirrored = (period - 1 - index) if edge else (period - index)
    return torch.where(index >= size, mirrored, index)


def gaussian_taps(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter1d's weights: radius int(truncate·σ + 0.5), normalised."""
    radius = int(truncate * sigma + 0.5)
    if radius == 0:
        return torch.ones(1)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).float()


def gaussian_filter(images: torch.Tensor, sigma: float, mode: str = "nearest",
                    truncate: float = 4.0) -> torch.Tensor:
    """skimage.filters.gaussian over the two spatial axes of (B, C, H, W): separable taps,
    'nearest' (edge repeated) or 'reflect' (edge mirrored with itself) borders."""
    taps = gaussian_taps(sigma, truncate).to(images)
    radius = len(taps) // 2
    if radius == 0:
        return images
    out = images
    for axis in (-1, -2):
        size = out.shape[axis]
        index = torch.arange(-radius, size + radius, device=images.device)
        index = index.clamp(0, size - 1) if mode == "nearest" else reflect_index(index, size, True)
        padded = out.index_select(axis, index)
        out = sum(taps[k] * padded.narrow(axis, k, size) for k in range(len(taps)))
    return out


def opencv_gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """cv2.getGaussianKernel(size, sigma) for sigma > 0."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return taps / taps.sum()


def disk_kernel(radius: float, alias_blur: float) -> torch.Tensor:
    """The generator's `disk`: an aliased disk on a 17×17 grid (radius ≤ 8), normalised, then
    cv2.GaussianBlur 3×3 of `alias_blur` with REFLECT_101 borders."""
    span = torch.arange(-8, 9, dtype=torch.float64)
    y, x = torch.meshgrid(span, span, indexing="ij")
    disk = ((x ** 2 + y ** 2) <= radius ** 2).double()
    disk = disk / disk.sum()
    taps = opencv_gaussian_kernel(3, alias_blur)
    index = reflect_index(torch.arange(-1, 18), 17, edge=False)
    rows = disk[:, index]
    disk = sum(taps[k] * rows[:, k:k + 17] for k in range(3))
    columns = disk[index, :]
    return sum(taps[k] * columns[k:k + 17, :] for k in range(3)).float()


def filter2d(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """cv2.filter2D (a correlation, anchor at the centre, REFLECT_101 borders) per channel."""
    size = kernel.shape[-1]
    channels = images.shape[1]
    padded = F.pad(images, (size // 2,) * 4, mode="reflect")  # torch's reflect is REFLECT_101
    weight = kernel.to(images).expand(channels, 1, size, size)
    return F.conv2d(padded, weight, groups=channels)


def motion_blur_offsets(width: int, angle: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageMagick's MotionBlurImage offsets of its `width` taps along `angle` (degrees, one
    per image): (dx, dy), each (B, width), tap i at ceil(i·cos − ½), ceil(i·sin − ½)."""
    radians = torch.deg2rad(angle.double())[:, None]
    i = torch.arange(width, dtype=torch.float64)[None, :]
    dx = torch.ceil(i * torch.cos(radians) - 0.5).long()
    dy = torch.ceil(i * torch.sin(radians) - 0.5).long()
    return dx, dy


def magick_motion_blur(images: torch.Tensor, radius: float, sigma: float,
                       angle: torch.Tensor) -> torch.Tensor:
    """ImageMagick's motion blur, as Wand's `motion_blur(radius, sigma, angle)` ran it for
    CIFAR-10-C: width 2·ceil(radius) + 1 taps weighted exp(−i²/2σ²) (normalised), each reading
    the pixel offset along the angle, edge pixels repeated; then 8-bit output, as the PNG the
    generator decoded. One angle per image."""
    width = int(2 * math.ceil(radius) + 1)
    i = torch.arange(width, dtype=torch.float64)
    kernel = torch.exp(-(i ** 2) / (2 * sigma ** 2))
    kernel = (kernel / kernel.sum()).to(images)
    dx, dy = motion_blur_offsets(width, angle)
    batch, channels, height, width_px = images.shape
    rows = torch.arange(height)[None, :, None]
    columns = torch.arange(width_px)[None, None, :]
    flat = images.reshape(batch, channels, height * width_px)
    out = torch.zeros_like(flat)
    for tap in range(width):
        y = (rows + dy[:, tap, None, None]).clamp(0, height - 1)
        x = (columns + dx[:, tap, None, None]).clamp(0, width_px - 1)
        index = (y * width_px + x).reshape(batch, 1, -1).expand(-1, channels, -1)
        out += kernel[tap] * flat.gather(2, index)
    return (out.reshape(images.shape) * 255 + 1e-6).floor().div(255)  # as ImageMagick 6 writes


def clipped_zoom(images: torch.Tensor, factor: float) -> torch.Tensor:
    """The generator's clipped_zoom: the central ceil(H/factor) square, zoomed by `factor`
    with scipy's order-1 zoom (linear, corner-aligned, output round(side·factor)), then the
    central H×W cut out."""
    height = images.shape[-2]
    side = int(np.ceil(height / factor))
    top = (height - side) // 2
    crop = images[..., top:top + side, top:top + side]
    size = int(round(side * factor))
    zoomed = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=True)
    trim = (size - height) // 2
    return zoomed[..., trim:trim + height, trim:trim + height]


def bilinear_sample(images: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor,
                    edge: bool) -> torch.Tensor:
    """images (B, C, H, W) sampled at float coordinates rows, columns (B, H, W), bilinearly,
    with indices outside the image mirrored (`reflect_index`)."""
    batch, channels, height, width = images.shape
    flat = images.reshape(batch, channels, height * width)
    r0, c0 = rows.floor(), columns.floor()
    tr, tc = (rows - r0)[:, None], (columns - c0)[:, None]
    out = torch.zeros(batch, channels, height, width, dtype=images.dtype)
    for dr, wr in ((0, 1 - tr), (1, tr)):
        for dc, wc in ((0, 1 - tc), (1, tc)):
            r = reflect_index(r0.long() + dr, height, edge)
            c = reflect_index(c0.long() + dc, width, edge)
            index = (r * width + c).reshape(batch, 1, -1).expand(-1, channels, -1)
            out += wr * wc * flat.gather(2, index).reshape(out.shape)
    return out


def plasma_fractal(batch: int, size: int, decay: float, generator: torch.Generator
                   ) -> torch.Tensor:
    """The generator's plasma_fractal (diamond-square on a torus, wibble 100 shrinking by
    `decay` per level), one map per image, each scaled to [0, 1]: (B, size, size)."""
    maps = torch.zeros(batch, size, size, dtype=torch.float64)
    step, wibble = size, 100.0

    def wibbled_mean(total):
        noise = uniform(total.shape, -wibble, wibble, generator).double()
        return total / 4 + wibble * noise

    while step >= 2:
        half = step // 2
        corners = maps[:, 0:size:step, 0:size:step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        maps[:, half:size:step, half:size:step] = wibbled_mean(squares)
        centres = maps[:, half:size:step, half:size:step]
        corners = maps[:, 0:size:step, 0:size:step]
        maps[:, 0:size:step, half:size:step] = wibbled_mean(
            centres + centres.roll(1, 1) + corners + corners.roll(-1, 2))
        maps[:, half:size:step, 0:size:step] = wibbled_mean(
            centres + centres.roll(1, 2) + corners + corners.roll(-1, 1))
        step //= 2
        wibble /= decay
    low = maps.amin(dim=(1, 2), keepdim=True)
    maps = maps - low
    return (maps / maps.amax(dim=(1, 2), keepdim=True)).float()


def grayscale(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.unbind(1)
    return (GRAY[0] * r + GRAY[1] * g + GRAY[2] * b)[:, None]


def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image * 255).round().byte().permute(1, 2, 0).numpy())


def from_pil(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB")).copy()).permute(2, 0, 1).float() / 255


# ---- the corruptions ----------------------------------------------------------------------

def gaussian_noise(x, c, g):
    return (x + c * torch.randn(x.shape, generator=g)).clamp(0, 1)


def shot_noise(x, c, g):
    return (torch.poisson(x * c, generator=g) / c).clamp(0, 1)


def impulse_noise(x, c, g):
    flipped = torch.rand(x.shape, generator=g) < c
    salted = torch.rand(x.shape, generator=g) < 0.5
    return torch.where(flipped, salted.to(x.dtype), x)


def defocus_blur(x, c, g):
    return filter2d(x, disk_kernel(*c)).clamp(0, 1)


def glass_shuffle(pixels: torch.Tensor, shifts: torch.Tensor, delta: int) -> torch.Tensor:
    """The generator's local pixel shuffle: rows and columns from the far edge inwards (H −
    delta down to delta + 1), each pixel swapped with the one (dy, dx) from it, in that order;
    `shifts` (B, steps, 2) holds each image's (dx, dy) per visit."""
    batch, channels, height, width = pixels.shape
    flat = pixels.reshape(batch, channels, height * width).clone()
    images = torch.arange(batch)
    step = 0
    for h in range(height - delta, delta, -1):
        for w in range(width - delta, delta, -1):
            dx, dy = shifts[:, step, 0], shifts[:, step, 1]
            here = h * width + w
            there = (h + dy) * width + (w + dx)
            mine, theirs = flat[:, :, here].clone(), flat[images, :, there].clone()
            flat[:, :, here] = theirs
            flat[images, :, there] = mine
            step += 1
    return flat.reshape(pixels.shape)


def glass_visits(height: int, width: int, delta: int) -> int:
    return max(0, height - 2 * delta) * max(0, width - 2 * delta)


def glass_blur(x, c, g):
    sigma, delta, iterations = c
    blurred = (gaussian_filter(x, sigma) * 255).floor().div(255)  # np.uint8(... * 255)
    visits = glass_visits(*x.shape[-2:], delta)
    for _ in range(iterations):
        shifts = torch.randint(-delta, delta, (len(x), visits, 2), generator=g)
        blurred = glass_shuffle(blurred, shifts, delta)
    return gaussian_filter(blurred, sigma).clamp(0, 1)


def motion_blur(x, c, g):
    angle = uniform(len(x), -45, 45, g)
    return magick_motion_blur(x, c[0], c[1], angle).clamp(0, 1)


def zoom_blur(x, c, g):
    total = sum(clipped_zoom(x, float(factor)) for factor in c)
    return ((x + total) / (len(c) + 1)).clamp(0, 1)


def snow(x, c, g):
    mean, std, zoom, threshold, radius, sigma, keep = c
    layer = (torch.randn((len(x), 1) + x.shape[-2:], generator=g) * std + mean)
    layer = clipped_zoom(layer, zoom)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer)
    layer = (layer.clamp(0, 1) * 255).floor().div(255)  # the 8-bit 'L' image blurred next
    layer = magick_motion_blur(layer, radius, sigma, uniform(len(x), -135, -45, g))
    x = keep * x + (1 - keep) * torch.maximum(x, grayscale(x) * 1.5 + 0.5)
    return (x + layer + layer.flip(-1, -2)).clamp(0, 1)


def frost(x, c, g, frost_images: list[torch.Tensor] | None = None):
    if not frost_images:
        raise ValueError("frost needs the generator's frost photographs (frost_images)")
    height, width = x.shape[-2:]
    chosen = torch.randint(0, min(FROST_FILES, len(frost_images)), (len(x),), generator=g)
    layer = torch.empty_like(x)
    for i in range(len(x)):
        photo = frost_images[int(chosen[i])]
        top = int(torch.randint(0, photo.shape[-2] - height, (1,), generator=g))
        left = int(torch.randint(0, photo.shape[-1] - width, (1,), generator=g))
        layer[i] = photo[:, top:top + height, left:left + width]
    return (c[0] * x + c[1] * layer).clamp(0, 1)


def shrunk_frost(photo: torch.Tensor) -> torch.Tensor:
    """A frost photograph (3, H, W) in [0, 1] as the generator used it: cv2.resize by 0.2,
    bilinear (half-pixel centres, no antialiasing), sizes rounded."""
    size = (round(photo.shape[-2] * FROST_SCALE), round(photo.shape[-1] * FROST_SCALE))
    shrunk = F.interpolate(photo[None], size=size, mode="bilinear", align_corners=False)
    return (shrunk[0].clamp(0, 1) * 255).round() / 255  # cv2.resize keeps uint8


def fog(x, c, g):
    strength, decay = c
    size = 1 << (max(x.shape[-2:]) - 1).bit_length()  # the power of two that covers it
    layer = plasma_fractal(len(x), size, decay, g)[:, None, :x.shape[-2], :x.shape[-1]]
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    return ((x + strength * layer) * peak / (peak + strength)).clamp(0, 1)


def brightness(x, c, g):
    """The generator adds c to HSV's value; with hue and saturation kept, that scales the
    pixel by V'/V (a black pixel, saturation 0, becomes grey V')."""
    value = x.amax(dim=1, keepdim=True)
    raised = (value + c).clamp(max=1)
    return torch.where(value > 0, x * raised / value.clamp(min=1e-12), raised).clamp(0, 1)


def contrast(x, c, g):
    means = x.mean(dim=(2, 3), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


def affine_matrices(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """cv2.getAffineTransform for a batch: the (B, 2, 3) maps taking three source points
    (B, 3, 2) as (x, y) onto their targets."""
    ones = torch.ones(source.shape[:2] + (1,), dtype=source.dtype)
    solved = torch.linalg.solve(torch.cat([source, ones], dim=2), target)  # (B, 3, 2)
    return solved.transpose(1, 2)


def elastic_transform(x, c, g):
    batch, _, height, width = x.shape
    amplitude, smoothness, jitter = (value * height for value in c)
    centre, square = height // 2, min(height, width) // 3
    source = torch.tensor([[centre + square, centre + square], [centre + square, centre - square],
                           [centre - square, centre - square]], dtype=torch.float64)
    source = source.expand(batch, 3, 2)
    target = source + uniform((batch, 3, 2), -jitter, jitter, g).double()
    forward = affine_matrices(source, target)
    full = torch.cat([forward, torch.tensor([0, 0, 1.0], dtype=torch.float64).expand(batch, 1, 3)],
                     dim=1)
    inverse = torch.linalg.inv(full)[:, :2]  # warpAffine samples the source at M⁻¹·(x, y)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                            torch.arange(width, dtype=torch.float64), indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=0).reshape(3, -1)
    mapped = inverse @ points  # (B, 2, H·W): (x, y)
    warped = bilinear_sample(x, mapped[:, 1].reshape(batch, height, width).float(),
                             mapped[:, 0].reshape(batch, height, width).float(), edge=False)
    noise = uniform((batch, 2, height, width), -1, 1, g)
    shift = gaussian_filter(noise, smoothness, mode="reflect", truncate=3) * amplitude
    rows = torch.arange(height, dtype=x.dtype)[None, :, None] + shift[:, 1]
    columns = torch.arange(width, dtype=x.dtype)[None, None, :] + shift[:, 0]
    return bilinear_sample(warped, rows, columns, edge=True).clamp(0, 1)


def pixelate(x, c, g):
    height, width = x.shape[-2:]
    small = (int(width * c), int(height * c))
    return torch.stack([from_pil(to_pil(image).resize(small, Image.BOX).resize(
        (width, height), Image.BOX)) for image in x])


def jpeg_compression(x, c, g):
    out = []
    for image in x:
        buffer = io.BytesIO()
        to_pil(image).save(buffer, "JPEG", quality=c)
        out.append(from_pil(Image.open(buffer)))
    return torch.stack(out)


FUNCTIONS = {name: globals()[name] for name in CORRUPTIONS}


def corrupt(images: torch.Tensor, corruption: str, severity: int, seed: int = 0,
            frost_images: list[torch.Tensor] | None = None) -> torch.Tensor:
    """uint8 (B, 3, H, W) images, corrupted at `severity` (1-5), as uint8: the same bytes for
    the same images, corruption, severity and seed. `frost_images`: the generator's frost
    photographs, float (3, H, W) each, already shrunk (`shrunk_frost`)."""
    if corruption not in FUNCTIONS:
        raise ValueError(f"unknown corruption {corruption!r}: choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity}: choose 1 to 5")
    index = CORRUPTIONS.index(corruption)
    state = np.random.SeedSequence([seed, index, severity]).generate_state(2)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    x = images.cpu().float() / 255
    parameter = SEVERITY[corruption][severity - 1]
    options = {"frost_images": frost_images} if corruption == "frost" else {}
    out = FUNCTIONS[corruption](x, parameter, generator, **options)
    return (out * 255 + 1e-4).floor().clamp(0, 255).to(torch.uint8)  # np.uint8 truncates
