"""Load a dataset split as an in-memory uint8 tensor, from CIFAR python files or an image folder.

Every source ends as the same `Split` (uint8 N×3×H×W images, int64 labels, class names), so
the rest of the suite never knows where the pixels came from. Decoding tens of thousands of
small files is slow, so each decoded split is cached in one file and reused until its source
changes.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from robust_ssl.errors import DataError
from robust_ssl.plumbing.files import save_atomically

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_FORMAT = 1
IMAGE_SIZE = 32  # what the suite's models and augmentations are built for
UNLABELED = "unlabeled"  # the one class of a flat folder of images

# torchvision's python-format CIFAR: folder, train files, test files, meta file, label keys.
CIFAR_FILES = {
    "cifar10": dict(
        folder="cifar-10-batches-py",
        train=[f"data_batch_{i}" for i in range(1, 6)],
        test=["test_batch"],
        meta="batches.meta",
        labels="labels",
        names="label_names",
        pretty="CIFAR-10",
    ),
    "cifar100": dict(
        folder="cifar-100-python",
        train=["train"],
        test=["test"],
        meta="meta",
        labels="fine_labels",
        names="fine_label_names",
        pretty="CIFAR-100",
    ),
}


@dataclass(frozen=True)
class Split:
    """One split held in memory: images are uint8 N×3×H×W, labels int64 N."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def load_split(
    dataset: str,
    split: str,
    data_dir: str | os.PathLike = "data",
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    resize: bool = False,
) -> Split:
    """Load `split` ("train" or "test") of `dataset`.

    `dataset` is "cifar10" or "cifar100" (looked up under `data_dir`, see `resolve_source`) or
    the path of an image folder `ROOT/{train,test}/<class>/*.{png,jpg,jpeg}` (for unlabeled
    pretraining also a flat folder of images). The decoded split is cached in `cache_dir`
    (default `<data_dir>/.cache`) and reused while the source files keep their names, sizes
    and modification times.

    Images must be 32×32, the size the suite's models and augmentations are built for;
    `resize=True` resizes any other size to 32×32 (antialiased), the same way for every split.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    source = resolve_source(dataset, data_dir, download)
    if use_cache:
        cache_root = Path(cache_dir) if cache_dir is not None else Path(data_dir) / ".cache"
        loaded = _cached(source, split, cache_root)
    else:
        loaded = source.decode(split)
    return _to_model_size(loaded, source.root, resize)


def _to_model_size(split: Split, root: Path, resize: bool) -> Split:
    """Refuse, or resize, images that are not IMAGE_SIZE×IMAGE_SIZE: a silent mismatch trains
    on crops of one size and tests on another."""
    height, width = split.images.shape[-2:]
    if (height, width) == (IMAGE_SIZE, IMAGE_SIZE):
        return split
    if not resize:
        raise DataError(
            f"images in '{root}' are {height}×{width} but the suite's models take "
            f"{IMAGE_SIZE}×{IMAGE_SIZE}: set `resize: true` in the data section "
            f"(--set data.resize=true, or RESIZE=1 for make) to resize every split to "
            f"{IMAGE_SIZE}×{IMAGE_SIZE}, or provide {IMAGE_SIZE}×{IMAGE_SIZE} images")
    chunks = []
    for start in range(0, len(split.images), 4096):
        chunk = split.images[start:start + 4096].float()
        chunk = torch.nn.functional.interpolate(chunk, size=(IMAGE_SIZE, IMAGE_SIZE),
                                                mode="bilinear", antialias=True,
                                                align_corners=False)
        chunks.append(chunk.round_().clamp_(0, 255).to(torch.uint8))
    return Split(torch.cat(chunks), split.labels, split.classes)


def describe_source(dataset: str, data_dir: str | os.PathLike) -> str:
    """What a dataset name resolves to, for result files: e.g. "'cifar10', image folder (JPG;
    data/cifar10)" for the JPEG copy, "CIFAR-10, torchvision's python-format files (...)"."""
    return resolve_source(dataset, data_dir).describe()


def data_identity(dataset: str, data_dir: str | os.PathLike) -> str:
    """The data a run reads, named by what it is, not where it lies: the kind of source and a
    hash of every file's name (relative to the source) and size. A copy of the data elsewhere,
    on another machine or unpacked again, has the same identity; an added, removed or resized
    file gives another (run fingerprints record this instead of DATA_DIR)."""
    source = resolve_source(dataset, data_dir)
    digest = hashlib.sha1(type(source).__name__.encode())
    for split in source.splits():
        for path in source.files_of(split):
            digest.update(f"{split}|{path.relative_to(source.root)}|{path.stat().st_size}\n"
                          .encode())
    return f"{type(source).__name__}:{digest.hexdigest()[:16]}"


def resolve_source(dataset: str, data_dir: str | os.PathLike, download: bool = False):
    """Find where `dataset` lives: CIFAR python files, an image folder, or (opt-in) a download."""
    data_dir = Path(data_dir)
    if dataset in CIFAR_FILES:
        spec = CIFAR_FILES[dataset]
        if (data_dir / spec["folder"]).is_dir():
            return CifarFiles(data_dir / spec["folder"], dataset)
        if (data_dir / dataset).is_dir():
            return ImageFolder(data_dir / dataset)
        if download:
            _download(dataset, data_dir)
            return CifarFiles(data_dir / spec["folder"], dataset)
        missing = "" if data_dir.is_dir() else ", which does not exist"
        raise DataError(
            f"{spec['pretty']} not found in data directory '{data_dir}' "
            f"({data_dir.resolve()}{missing}). "
            f"Provide one of: '{data_dir / spec['folder']}/' (torchvision's python files) or "
            f"'{data_dir / dataset}/{{train,test}}/<class>/*.png|jpg' (an image folder); "
            "or pass download=true (DOWNLOAD=1 for make) to fetch it through torchvision."
        )
    for candidate in (Path(dataset), data_dir / dataset):
        if candidate.is_dir():
            return ImageFolder(candidate)
    raise DataError(
        f"unknown dataset {dataset!r}: use 'cifar10', 'cifar100', or the path of an image folder "
        f"with train/<class>/ and test/<class>/ (looked in '{dataset}' and '{data_dir / dataset}')"
    )


def _download(dataset: str, data_dir: Path) -> None:
    """Fetch the CIFAR python files through torchvision; fail in one clear line when offline."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(root=str(data_dir), train=train, download=True)
    except Exception as error:  # urllib, socket and checksum errors all mean the same here
        spec = CIFAR_FILES[dataset]
        raise DataError(
            f"could not download {spec['pretty']} into '{data_dir}': {error}. Without a network, "
            f"copy torchvision's '{spec['folder']}/' or an image folder '{dataset}/' into "
            f"'{data_dir}', or point DATA_DIR at a directory that has one."
        ) from error


class CifarFiles:
    """torchvision's python-format CIFAR-10/100 files, read directly.

    torchvision's dataset classes insist on the MD5 sums of the original files, so they cannot
    read a re-packed copy or the small files our tests generate; the format itself is a pickle.
    """

    def __init__(self, root: Path, dataset: str):
        self.root = root
        self.spec = CIFAR_FILES[dataset]
        self.cache_name = f"{dataset}-files-{_path_hash(root)}"

    def _files(self, split: str) -> list[Path]:
        return [self.root / name for name in self.spec[split]] + [self.root / self.spec["meta"]]

    def describe(self) -> str:
        return f"{self.spec['pretty']}, torchvision's python-format files ({self.root})"

    def splits(self) -> tuple[str, ...]:
        return SPLITS

    def files_of(self, split: str) -> list[Path]:
        return [path for path in self._files(split) if path.is_file()]

    def fingerprint(self, split: str) -> str:
        return _fingerprint(self._files(split), self.root)

    def decode(self, split: str) -> Split:
        *batches, meta = self._files(split)
        classes = tuple(self._unpickle(meta)[self.spec["names"]])
        images, labels = [], []
        for path in batches:
            entry = self._unpickle(path)
            try:
                data = torch.as_tensor(entry["data"], dtype=torch.uint8)
                images.append(data.reshape(-1, 3, 32, 32))
                labels.append(torch.as_tensor(entry[self.spec["labels"]], dtype=torch.int64))
            except (KeyError, RuntimeError, TypeError, ValueError) as error:
                raise DataError(f"corrupt CIFAR file '{path}': {error}. {_REFETCH}") from error
        result = Split(torch.cat(images), torch.cat(labels), classes)
        _check_labels(result, self.root)
        return result

    @staticmethod
    def _unpickle(path: Path) -> dict:
        if not path.is_file():
            raise DataError(f"missing CIFAR file '{path}'. {_REFETCH}")
        try:
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
        except Exception as error:
            raise DataError(f"corrupt CIFAR file '{path}': {error}. {_REFETCH}") from error
        if not isinstance(entry, dict):
            raise DataError(f"corrupt CIFAR file '{path}': expected a dict. {_REFETCH}")
        return entry


_REFETCH = "Delete the folder and download it again (download=true), or restore it from a copy."


class ImageFolder:
    """`ROOT/{train,test}/<class>/*.{png,jpg,jpeg}`; classes sorted by name, label = index.

    Hidden entries (`.ipynb_checkpoints/`, `.DS_Store`, ...) are ignored, so they never become
    a class. A flat folder (images directly in ROOT, no `train/`) is one unlabeled train split,
    for pretraining.
    """

    def __init__(self, root: Path):
        self.root = root
        self.cache_name = f"{root.name}-folder-{_path_hash(root)}"

    def describe(self) -> str:
        # the format of the first class's first image, not a walk over every file
        folder = self.root if self.flat else self.root / "train" / self.classes("train")[0]
        first = next(iter(_images_in(folder)), None)
        suffix = first.suffix.lstrip(".").upper() if first else "images"
        kind = "flat image folder" if self.flat else "image folder"
        return f"'{self.root.name}', {kind} ({suffix}; {self.root})"

    def splits(self) -> tuple[str, ...]:
        return ("train",) if self.flat else tuple(s for s in SPLITS if (self.root / s).is_dir())

    def files_of(self, split: str) -> list[Path]:
        return [path for path, _ in self._files(split)]

    @property
    def flat(self) -> bool:
        return not (self.root / "train").is_dir() and any(_images_in(self.root))

    def classes(self, split: str) -> list[str]:
        if self.flat:
            if split != "train":
                raise DataError(
                    f"'{self.root}' is a flat folder of images: it serves unlabeled pretraining "
                    f"only; labeled data needs '{self.root}/{{train,test}}/<class>/*.png|jpg'")
            return [UNLABELED]
        split_dir = self.root / split
        if not split_dir.is_dir():
            raise DataError(
                f"image folder '{self.root}' has no '{split}/' directory: expected "
                f"'{self.root}/{{train,test}}/<class>/*.png|jpg'"
            )
        return sorted(entry.name for entry in os.scandir(split_dir)
                      if entry.is_dir() and not entry.name.startswith("."))

    def _files(self, split: str) -> list[tuple[Path, int]]:
        classes = self.classes(split)
        if self.flat:
            return [(path, 0) for path in _images_in(self.root)]
        other = "test" if split == "train" else "train"
        if (self.root / other).is_dir() and self.classes(other) != classes:
            differ = sorted(set(classes) ^ set(self.classes(other)))
            raise DataError(
                f"train and test classes differ in '{self.root}' (only on one side: "
                f"{', '.join(differ) or 'same names, different order'}): give both splits "
                "the same class folders"
            )
        files = [(path, label) for label, name in enumerate(classes)
                 for path in _images_in(self.root / split / name)]
        if not files:
            raise DataError(
                f"no images in '{self.root / split}': expected <class>/*.png|jpg|jpeg inside it"
            )
        return files

    def fingerprint(self, split: str) -> str:
        return _fingerprint([path for path, _ in self._files(split)], self.root)

    def decode(self, split: str) -> Split:
        files = self._files(split)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            images = list(pool.map(_decode_image, [path for path, _ in files]))
        shape = images[0].shape
        for (path, _), image in zip(files, images):
            if image.shape != shape:
                raise DataError(
                    f"image '{path}' is {tuple(image.shape[1:])} but '{files[0][0]}' is "
                    f"{tuple(shape[1:])}: every image of a dataset must have the same size"
                )
        labels = torch.tensor([label for _, label in files], dtype=torch.int64)
        return Split(torch.stack(images), labels, tuple(self.classes(split)))


def _images_in(folder: Path) -> list[Path]:
    """The image files directly inside `folder`, sorted by name, hidden files skipped."""
    return [Path(entry.path) for entry in sorted(os.scandir(folder), key=lambda e: e.name)
            if entry.is_file() and not entry.name.startswith(".")
            and entry.name.lower().endswith(IMAGE_SUFFIXES)]


def _decode_image(path: Path) -> torch.Tensor:
    """Pillow, not torchvision.io: the latter's image codecs are deprecated since 0.29."""
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1)
    except Exception as error:
        raise DataError(
            f"cannot read image '{path}' ({error}): replace or delete the file"
        ) from error


def _check_labels(split: Split, root: Path) -> None:
    if len(split.images) != len(split.labels):
        raise DataError(f"corrupt data in '{root}': {len(split.images)} images but "
                        f"{len(split.labels)} labels. {_REFETCH}")
    if len(split) and (split.labels.min() < 0 or split.labels.max() >= len(split.classes)):
        raise DataError(f"corrupt data in '{root}': labels outside 0..{len(split.classes) - 1}. "
                        f"{_REFETCH}")


def _path_hash(path: Path) -> str:
    return hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]


def _fingerprint(paths: list[Path], root: Path) -> str:
    """Names, sizes and modification times: a changed, added or removed file changes it."""
    digest = hashlib.sha1(f"format {CACHE_FORMAT}".encode())
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise DataError(f"missing file '{path}'. {_REFETCH}") from None
        digest.update(f"{path.relative_to(root)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cached(source, split: str, cache_root: Path) -> Split:
    """Decode once, then reuse `<cache_root>/<source>-<split>.pt` while the fingerprint holds."""
    path = cache_root / f"{source.cache_name}-{split}.pt"
    fingerprint = source.fingerprint(split)
    if path.is_file():
        try:
            entry = torch.load(path, weights_only=True)
            if entry["fingerprint"] == fingerprint:
                return Split(entry["images"], entry["labels"], tuple(entry["classes"]))
        except Exception as error:  # a damaged cache is only a cache: decode again
            warnings.warn(f"ignoring unreadable cache file '{path}': {error}", stacklevel=3)
    result = source.decode(split)
    entry = dict(fingerprint=fingerprint, images=result.images, labels=result.labels,
                 classes=list(result.classes))
    try:
        save_atomically(entry, path)
    except OSError as error:
        warnings.warn(f"cannot write the data cache '{path}' ({error}); "
                      "decoding again next time", stacklevel=3)
    return result
