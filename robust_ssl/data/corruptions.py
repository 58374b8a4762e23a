"""Corrupted test images: the published CIFAR-10-C (or CIFAR-100-C) files when they are there,
otherwise the test split corrupted here (corruption_ops.py), seeded and cached like the other
splits. The two are never mixed: a source is chosen once per evaluation and recorded, and the
report refuses a table whose cells used different ones.

Published layout (Hendrycks & Dietterich's release): `DATA_DIR/CIFAR-10-C/<corruption>.npy`,
uint8 (5·N, 32, 32, 3), severities 1 to 5 one after another, each the N test images in
CIFAR-10's own order, and `labels.npy` (5·N). Those images are the original test set: they
pair image by image with a test split read from torchvision's CIFAR files; with another copy
(the JPEG image folder) they are evaluated on their own labels and marked unpaired.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robust_ssl.data import corruption_ops
from robust_ssl.data.corruption_ops import CORRUPTIONS, SEVERITIES
from robust_ssl.data.sources import Split
from robust_ssl.data.subsets import stratified_limit, stratified_split
from robust_ssl.errors import DataError
from robust_ssl.plumbing.files import save_atomically

SOURCES = ("auto", "published", "generated")
PUBLISHED = {"cifar10": "CIFAR-10-C", "cifar100": "CIFAR-100-C"}
FROST_FOLDER = "frost"  # DATA_DIR/frost/frost1.png ... frost5.jpg, the generator's photographs
GENERATOR_VERSION = 1  # in the cache key: a change to corruption_ops makes new files


@dataclass(frozen=True)
class CorruptedSet:
    """One corruption at one severity: uint8 images and labels, `index` the images' positions
    in what the records refer to (the test split when `paired`, else the published set)."""

    images: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    paired: bool


def check_corruptions(names) -> tuple[str, ...]:
    """'all' | 'none' | a list of names -> the names, in CIFAR-10-C's order."""
    if names is None or names == "none":
        return ()
    if names == "all":
        return CORRUPTIONS
    if isinstance(names, str):
        names = [names]
    unknown = [name for name in names if name not in CORRUPTIONS]
    if unknown:
        raise DataError(f"unknown corruption {unknown[0]!r}: choose all, none or a list of "
                        f"{', '.join(CORRUPTIONS)}")
    return tuple(name for name in CORRUPTIONS if name in names)


def published_folder(data_dir: str | os.PathLike, dataset: str) -> Path | None:
    """`DATA_DIR/CIFAR-10-C` (CIFAR-100-C for cifar100) when it holds labels.npy."""
    name = PUBLISHED.get(dataset)
    folder = Path(data_dir) / name if name else None
    return folder if folder is not None and (folder / "labels.npy").is_file() else None


def choose_source(choice: str, data_dir: str | os.PathLike, dataset: str) -> str:
    """'published' or 'generated' for `choice` (auto: published where the files are)."""
    if choice not in SOURCES:
        raise DataError(f"corruption_source={choice!r}: choose auto, published or generated")
    found = published_folder(data_dir, dataset)
    if choice == "published" and found is None:
        expected = Path(data_dir) / PUBLISHED.get(dataset, "CIFAR-10-C")
        raise DataError(f"corruption_source=published but '{expected}' has no labels.npy: put "
                        "the published files there (<corruption>.npy and labels.npy), or use "
                        "corruption_source=auto to generate corruptions where they are missing")
    if choice == "auto":
        return "published" if found is not None else "generated"
    return choice


def describe(source: str, data_dir: str | os.PathLike, dataset: str, seed: int) -> str:
    if source == "published":
        return f"{PUBLISHED[dataset]}, the published files ({published_folder(data_dir, dataset)})"
    return (f"generated corruptions, not {PUBLISHED.get(dataset, 'CIFAR-10-C')}: the test "
            f"images corrupted by robust_ssl/data/corruption_ops.py (CIFAR-10-C's generator and "
            f"parameters, other random draws), seed {seed}")


def read_published(folder: Path, corruption: str, severity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One severity's (uint8 N×3×32×32 images, labels) of a published file."""
    path = folder / f"{corruption}.npy"
    if not path.is_file():
        raise DataError(f"'{folder}' has labels.npy but no {corruption}.npy: add the file, or "
                        "choose the corruptions that are there (corruptions: [...])")
    try:
        images = np.load(path, mmap_mode="r")
        labels = np.load(folder / "labels.npy", mmap_mode="r")
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read '{path}' ({error}): restore it from the published "
                        "release") from None
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) % len(SEVERITIES) \
            or len(images) != len(labels) or images.dtype != np.uint8:
        raise DataError(f"'{path}' is {images.dtype} {images.shape} with {len(labels)} labels, "
                        "not the published layout (uint8 (5·N, H, W, 3), severities 1-5 one "
                        "after another, labels.npy of the same length): restore it")
    size = len(images) // len(SEVERITIES)
    part = slice((severity - 1) * size, severity * size)
    pixels = torch.from_numpy(np.array(images[part])).permute(0, 3, 1, 2).contiguous()
    return pixels, torch.from_numpy(np.asarray(labels[part], dtype=np.int64))


def published_set(folder: Path, corruption: str, severity: int, test: Split,
                  test_index: torch.Tensor, fraction: float, limit: int | None,
                  seed: int) -> CorruptedSet:
    """The published images of the test images evaluated: the same positions when the
    published labels there are the test split's (paired), else the published set's own
    stratified subset by the same rule (unpaired)."""
    images, labels = read_published(folder, corruption, severity)
    index = test_index.cpu()
    fits = len(index) > 0 and int(index.max()) < len(labels)
    if fits and torch.equal(labels[index], test.labels.cpu()):
        return CorruptedSet(images[index], labels[index], index, paired=True)
    keep, _ = stratified_split(labels, fraction, seed=seed)
    keep = keep[stratified_limit(labels[keep], limit, seed)]
    return CorruptedSet(images[keep], labels[keep], keep, paired=False)


def frost_photographs(data_dir: str | os.PathLike) -> list[torch.Tensor] | None:
    """The generator's frost1..frost5 images from DATA_DIR/frost/, shrunk as it shrank them;
    None where they are missing (frost cannot be generated without them)."""
    folder = Path(data_dir) / FROST_FOLDER
    photos = []
    for number in range(1, corruption_ops.FROST_FILES + 1):
        found = sorted(folder.glob(f"frost{number}.*")) if folder.is_dir() else []
        if not found:
            return None
        with Image.open(found[0]) as image:
            pixels = np.asarray(image.convert("RGB"))
        photo = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255
        photos.append(corruption_ops.shrunk_frost(photo))
    return photos


def generated_set(test: Split, test_index: torch.Tensor, corruption: str, severity: int,
                  seed: int, data_dir: str | os.PathLike,
                  frost: list[torch.Tensor] | None) -> CorruptedSet:
    """The evaluated test images corrupted here, from the cache when made before: the key is
    a hash of the images themselves, the corruption, severity, seed and generator version."""
    images = test.images.cpu().contiguous()
    digest = hashlib.sha1(images.numpy().tobytes())
    digest.update(f"{corruption}|{severity}|{seed}|{GENERATOR_VERSION}".encode())
    if corruption == "frost":
        for photo in frost or []:
            digest.update(photo.numpy().tobytes())
    path = Path(data_dir) / ".cache" / f"corrupted-{corruption}-{severity}-{digest.hexdigest()[:16]}.pt"
    corrupted = None
    if path.is_file():
        try:
            corrupted = torch.load(path, weights_only=True)
        except Exception as error:  # a damaged cache is only a cache: make it again
            warnings.warn(f"ignoring unreadable cache file '{path}': {error}", stacklevel=2)
    if corrupted is None or corrupted.shape != images.shape:
        corrupted = corruption_ops.corrupt(images, corruption, severity, seed, frost)
        try:
            save_atomically(corrupted, path)
        except OSError as error:
            warnings.warn(f"cannot write the corruption cache '{path}' ({error}); generating "
                          "again next time", stacklevel=2)
    return CorruptedSet(corrupted, test.labels.cpu(), test_index.cpu(), paired=True)
