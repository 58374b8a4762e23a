"""Small datasets the tests build themselves, in each format the suite reads."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

CLASSES = ("cat", "dog", "frog")


def save_image(image: torch.Tensor, path: Path, **options) -> None:
    """Write a uint8 C×H×W tensor; the format follows the file name (PNG is lossless)."""
    pixels = image.permute(1, 2, 0).numpy()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(path, **options)


def write_image_folder(root: Path, per_class: dict[str, int], size: int = 32, seed: int = 0,
                       classes: tuple[str, ...] = CLASSES) -> dict[str, torch.Tensor]:
    """PNGs of random pixels under root/<split>/<class>/; returns the images written per split."""
    generator = torch.Generator().manual_seed(seed)
    written = {}
    for split, count in per_class.items():
        images = []
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = torch.randint(0, 256, (3, size, size), dtype=torch.uint8,
                                      generator=generator)
                save_image(image, folder / f"{i:04d}.png")
                images.append(image)
        written[split] = torch.stack(images)
    return written


def write_cifar_files(data_dir: Path, dataset: str, train: int, test: int, seed: int = 0
                      ) -> dict[str, tuple[np.ndarray, list[int]]]:
    """torchvision's python-format CIFAR files with random pixels and labels."""
    rng = np.random.default_rng(seed)
    if dataset == "cifar10":
        folder, classes = data_dir / "cifar-10-batches-py", [f"c10_{i}" for i in range(10)]
        parts = {f"data_batch_{i}": "train" for i in range(1, 6)} | {"test_batch": "test"}
        label_key, meta = "labels", ("batches.meta", {"label_names": classes})
    else:
        folder, classes = data_dir / "cifar-100-python", [f"c100_{i:02d}" for i in range(100)]
        parts = {"train": "train", "test": "test"}
        label_key, meta = "fine_labels", ("meta", {"fine_label_names": classes})
    folder.mkdir(parents=True)
    counts = {"train": train, "test": test}
    written: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    for file_name, split in parts.items():
        n = counts[split] // sum(1 for s in parts.values() if s == split)
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(label) for label in rng.integers(0, len(classes), n)]
        with open(folder / file_name, "wb") as f:
            pickle.dump({"data": data, label_key: labels}, f)
        written[split][0].append(data)
        written[split][1].extend(labels)
    with open(folder / meta[0], "wb") as f:
        pickle.dump(meta[1], f)
    return {split: (np.concatenate(d), l) for split, (d, l) in written.items()}


def pytest_configure(config):
    """Under pytest-xdist each worker gets its share of the cores as torch threads (and so do the
    cells it starts): two workers of one thread each on 2 cores run about twice as fast as one of
    two threads, since these small models barely use a second thread."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (whose workers collect) the end-to-end tier goes first: a worker queues
    up to three tests ahead, and three long ones queued last would keep it busy while the others
    idle."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def image_folder(tmp_path):
    """data_dir/cifar10 as an image folder of PNGs: 3 classes, 20 train and 4 test images each."""
    data_dir = tmp_path / "data"
    written = write_image_folder(data_dir / "cifar10", {"train": 20, "test": 4})
    return data_dir, written


def write_table_data(data: Path) -> Path:
    """A data directory for the smoke tables: CIFAR-100 python files to pretrain on and a
    3-class CIFAR-10 image folder, 64 train images a class (enough for a 1% fraction after the
    validation split)."""
    write_cifar_files(data, "cifar100", train=200, test=20)
    write_image_folder(data / "cifar10", {"train": 64, "test": 4})
    return data


@pytest.fixture
def table_data(tmp_path):
    return write_table_data(tmp_path / "data")


@pytest.fixture(scope="session")
def smoke_table1(tmp_path_factory):
    """(data, results) of one uninterrupted smoke Table 1, seed 0, two cells at once (the same
    metrics as one at a time, faster): the reference that the SLURM executor's and the killed
    table's metrics are compared with, made once for both, also when they run in two pytest
    workers (the first to come makes it under a lock in the workers' common folder)."""
    import fcntl
    import subprocess

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    root = root / "smoke-table1"
    data, results = root / "data", root / "results"
    root.mkdir(exist_ok=True)
    with open(root.parent / "smoke-table1.lock", "w") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        if not (root / "made").exists():
            write_table_data(data)
            made = subprocess.run(
                ["make", "--no-print-directory", "-C", str(Path(__file__).parents[1]), "table1",
                 "PROFILE=smoke", "JOBS=2", f"DATA_DIR={data}", f"RESULTS={results}",
                 "WANDB=off"], capture_output=True, text=True)
            assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
            (root / "made").touch()
    return data, results


@pytest.fixture(autouse=True)
def no_run_seed_from_earlier_tests(monkeypatch):
    """seed_everything records the run's seed in PL_GLOBAL_SEED, which orders training data
    (data.modules.run_seed): each test starts without one, as a fresh process does."""
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
