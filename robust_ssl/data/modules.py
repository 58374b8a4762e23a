"""LightningDataModules over in-memory uint8 splits.

Batches are cut by indexing the whole tensor at once (no per-image Python work) and leave the
loader as uint8; conversion and augmentation run after the transfer to the device, where a GPU
does them. Each training epoch's order is a permutation seeded by (run seed, epoch), so it does not
depend on how many random numbers augmentation or attacks drew, and a resumed run sees the same
order as an uninterrupted one. Pretext tasks bring their own augmentation (a rotation task needs other views than
SimCLR), so the unlabeled module hands over uint8 images and the pretrainer augments them.
"""

from __future__ import annotations

import os

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from robust_ssl.data.augment import CropFlip, to_unit_float
from robust_ssl.data.corruptions import (CorruptedSet, generated_set, published_folder,
                                         published_set)
from robust_ssl.data.sources import Split, describe_source, load_split
from robust_ssl.data.subsets import check_fraction, stratified_limit, stratified_split
from robust_ssl.errors import DataError


class TensorBatches(Dataset):
    """Indexed by a tensor of indices: returns the whole batch in one tensor operation, on the
    device the tensors live on."""

    def __init__(self, *tensors: torch.Tensor):
        self.tensors = tensors
        self.device = tensors[0].device

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, indices: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if self.device.type == "cuda":
            # pinned and non-blocking: a pageable copy would make the host wait for every
            # queued GPU kernel before each step
            indices = indices.pin_memory().to(self.device, non_blocking=True)
        batch = tuple(tensor[indices] for tensor in self.tensors)
        return batch[0] if len(batch) == 1 else batch


class ShardedBatches(DistributedSampler):
    """Batches of indices for one of `world_size` processes, sharded here, not by Lightning.

    Training (`shuffle`): each epoch's order is a permutation drawn from a generator seeded by
    (seed, epoch), the same on every rank; each rank takes its own slice of each global batch of
    `world_size × batch_size` indices, so across ranks an image is used once per epoch. Ranks
    must take the same number of steps, so without `drop_last` the permutation is padded to a
    multiple of `world_size` with its own first indices (as DistributedSampler does: fewer than
    `world_size` repeats an epoch, and only when the size does not divide).
    Evaluation (no `shuffle`): the images in order, sliced the same way and never padded, so no
    image is counted twice; a rank may get one batch fewer.
    Lightning calls `set_epoch` before every epoch. The class subclasses DistributedSampler
    only so that Lightning uses it as it is instead of wrapping it in a sampler of its own.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, drop_last: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        # no super().__init__(): it would ask for an initialised process group
        self.size, self.batch_size, self.shuffle, self.drop_last = size, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        state = np.random.SeedSequence([self.seed, self.epoch]).generate_state(2)
        generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        return torch.randperm(self.size, generator=generator)

    def _global_batches(self) -> list[torch.Tensor]:
        order, step = self.order(), self.world_size * self.batch_size
        if self.drop_last:
            order = order[: len(order) // step * step]
        elif self.shuffle and len(order) % self.world_size:
            order = torch.cat([order, order[: self.world_size - len(order) % self.world_size]])
        return list(order.split(step))

    def __iter__(self):
        for batch in self._global_batches():
            if len(batch) > self.rank:
                yield batch[self.rank::self.world_size]

    def __len__(self) -> int:
        return sum(1 for batch in self._global_batches() if len(batch) > self.rank)


def check_classes(model: str, classes: int, data_classes: int | None, dataset: str,
                  fix: str) -> None:
    """The one check that a classifier predicts the data's classes: "<model> N classes but
    the data 'D' has M: <fix>" (data not set up yet, with no classes, passes)."""
    if data_classes is not None and data_classes != classes:
        raise DataError(f"{model} {classes} classes but the data '{dataset}' has "
                        f"{data_classes}: {fix}")


def run_seed() -> int:
    """The run's seed, which Lightning's seed_everything records in PL_GLOBAL_SEED (0 without
    one). Training order follows it; label subsets follow the datamodule's own `seed`, so
    another run seed reshuffles but trains on the same labeled images."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def batch_loader(*tensors: torch.Tensor, batch_size: int, shuffle: bool, drop_last: bool = False,
                 seed: int = 0, trainer: pl.Trainer | None = None) -> DataLoader:
    """Whole batches per index operation, sharded across the trainer's processes (see
    ShardedBatches); tensors already on a GPU stay there."""
    rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
    sampler = ShardedBatches(len(tensors[0]), batch_size, shuffle, drop_last, seed, rank, world)
    on_cpu = all(tensor.device.type == "cpu" for tensor in tensors)
    # a generator of its own: creating an iterator would otherwise draw a worker seed from the
    # global generator, which augmentation draws from, and shift a resumed run's augmentations
    return DataLoader(TensorBatches(*tensors), sampler=sampler, batch_size=None,
                      pin_memory=on_cpu and torch.cuda.is_available(),
                      generator=torch.Generator())


def training_device(trainer: pl.Trainer | None) -> torch.device:
    """Where the splits live: the trainer's device (this rank's GPU under DDP), so batches are
    cut where they are used; CIFAR-10 train is 150 MB of uint8."""
    return trainer.strategy.root_device if trainer is not None else torch.device("cpu")


def on_device(split: Split, device: torch.device) -> Split:
    return Split(split.images.to(device), split.labels.to(device), split.classes)


class UnlabeledDataModule(pl.LightningDataModule):
    """Images without labels for pretraining: CIFAR-100 train by default, as in the paper.

    `dataset` may be "cifar10" (in-domain pretraining), "cifar100", an image-folder path or a
    flat folder of images; `fraction` < 1 keeps a stratified, seeded subset of the images (for
    quick profiles). Batches are uint8 image tensors N×3×H×W; the last partial batch is dropped
    (NT-Xent's negatives depend on the batch size).
    """

    def __init__(self, dataset: str = "cifar100", data_dir: str = "data", batch_size: int = 256,
                 fraction: float = 1.0, seed: int = 0, download: bool = False,
                 resize: bool = False):
        super().__init__()
        check_fraction(fraction)
        self.save_hyperparameters()
        self.images: torch.Tensor | None = None

    def prepare_data(self) -> None:
        hp = self.hparams
        load_split(hp.dataset, "train", hp.data_dir, hp.download, resize=hp.resize)

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        hp = self.hparams
        train = load_split(hp.dataset, "train", hp.data_dir, resize=hp.resize)
        keep, _ = stratified_split(train.labels, hp.fraction, seed=hp.seed)
        world = self.trainer.world_size if self.trainer else 1
        if len(keep) < hp.batch_size * world:
            raise DataError(
                f"{len(keep)} pretraining images (fraction {hp.fraction} of '{hp.dataset}') are "
                f"fewer than one batch of {hp.batch_size}{f' × {world} processes' if world > 1 else ''}"
                ": no training step could run; lower data.batch_size or use more images")
        self.images = train.images[keep].to(training_device(self.trainer))

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.images, batch_size=self.hparams.batch_size, shuffle=True,
                            drop_last=True, seed=run_seed(), trainer=self.trainer)


class LabeledDataModule(pl.LightningDataModule):
    """A labeled dataset (CIFAR-10 by default) as a stratified label fraction, validation, test.

    A `val_fraction` of each class is held out before `fraction` of the rest is taken, so the
    validation set is the same for every fraction; `test_fraction` < 1 evaluates on a stratified
    subset of the test split (for quick profiles), `test_limit` caps it at about that many images
    and `train_limit` / `val_limit` the other sets likewise (for smoke runs: a cap works on any
    data size).
    Training batches get the standard pad-crop and flip when `augment` is on; every batch
    becomes float [0, 1] on the device. The number of classes is the data's (at least two).
    """

    def __init__(self, dataset: str = "cifar10", data_dir: str = "data", fraction: float = 1.0,
                 val_fraction: float = 0.1, seed: int = 0, batch_size: int = 128,
                 eval_batch_size: int = 512, augment: bool = True, download: bool = False,
                 test_fraction: float = 1.0, test_limit: int | None = None,
                 train_limit: int | None = None, val_limit: int | None = None,
                 resize: bool = False):
        super().__init__()
        check_fraction(fraction)
        check_fraction(test_fraction, "test_fraction")
        self.save_hyperparameters()
        self.crop_flip = CropFlip()
        self.train: Split | None = None
        self.train_is_features = False

    def prepare_data(self) -> None:
        hp = self.hparams
        for split in ("train", "test"):
            load_split(hp.dataset, split, hp.data_dir, hp.download, resize=hp.resize)

    def setup(self, stage: str | None = None) -> None:
        if self.train is not None:
            return
        hp = self.hparams
        full = load_split(hp.dataset, "train", hp.data_dir, resize=hp.resize)
        if len(full.classes) < 2:
            raise DataError(
                f"'{hp.dataset}' has {len(full.classes)} class ({', '.join(full.classes)}): a "
                "classifier needs at least two class folders (train/<class>/, test/<class>/)")
        train_idx, val_idx = stratified_split(full.labels, hp.fraction, hp.val_fraction, hp.seed)
        train_idx = train_idx[stratified_limit(full.labels[train_idx], hp.train_limit, hp.seed)]
        val_idx = val_idx[stratified_limit(full.labels[val_idx], hp.val_limit, hp.seed)]
        device = training_device(self.trainer)
        self.train = on_device(Split(full.images[train_idx], full.labels[train_idx],
                                     full.classes), device)
        self.val = on_device(Split(full.images[val_idx], full.labels[val_idx], full.classes),
                             device)
        test = load_split(hp.dataset, "test", hp.data_dir, resize=hp.resize)
        keep, _ = stratified_split(test.labels, hp.test_fraction, seed=hp.seed)
        keep = keep[stratified_limit(test.labels[keep], hp.test_limit, hp.seed)]
        self.test = on_device(Split(test.images[keep], test.labels[keep], test.classes), device)
        self.test_index = keep  # each test image's index in the whole test split

    def use_train_features(self, features: torch.Tensor) -> None:
        """Train on precomputed features in place of images (a linear probe on a frozen
        encoder): the same order and labels, and no augmentation."""
        if len(features) != len(self.train):
            raise ValueError(f"{len(features)} features for {len(self.train)} training images")
        self.train = Split(features, self.train.labels, self.train.classes)
        self.train_is_features = True

    @property
    def num_classes(self) -> int | None:
        """The classes of the data (None before setup)."""
        return None if self.train is None else len(self.train.classes)

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.train.images, self.train.labels,
                            batch_size=self.hparams.batch_size, shuffle=True,
                            seed=run_seed(), trainer=self.trainer)

    def val_dataloader(self) -> DataLoader | list:
        if len(self.val) == 0:  # val_fraction=0: no validation loop
            return []
        return batch_loader(self.val.images, self.val.labels,
                            batch_size=self.hparams.eval_batch_size, shuffle=False,
                            trainer=self.trainer)

    def test_dataloader(self) -> DataLoader:
        """(images, labels, index in the test split): the evaluator keeps a record per image."""
        index = torch.arange(len(self.test), device=self.test.labels.device)
        return batch_loader(self.test.images, self.test.labels, index,
                            batch_size=self.hparams.eval_batch_size, shuffle=False,
                            trainer=self.trainer)

    def source_description(self) -> str:
        return describe_source(self.hparams.dataset, self.hparams.data_dir)

    def corrupted_test(self, corruption: str, severity: int, source: str, seed: int = 0,
                       frost: list[torch.Tensor] | None = None) -> CorruptedSet:
        """The test images evaluated, under `corruption` at `severity`: from the published
        files (`source` "published", data/corruptions.py) or corrupted here ("generated",
        seeded by `seed`, cached in DATA_DIR/.cache)."""
        hp = self.hparams
        if source == "published":
            return published_set(published_folder(hp.data_dir, hp.dataset), corruption,
                                 severity, self.test, self.test_index, hp.test_fraction,
                                 hp.test_limit, hp.seed)
        return generated_set(self.test, self.test_index, corruption, severity, seed,
                             hp.data_dir, frost)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels, *index = batch
        training = self.trainer is not None and self.trainer.training
        if training and self.hparams.augment and not self.train_is_features:
            return self.crop_flip(images), labels
        return (to_unit_float(images), labels, *index)
