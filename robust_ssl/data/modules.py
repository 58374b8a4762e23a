"""LightningDataModules over in-memory uint8 splits.

Batches are cut by indexing the whole tensor at once (no per-image Python work) and leave the
loader as uint8; conversion and augmentation run after the transfer to the device, where a GPU
does them. Pretext tasks bring their own augmentation (a rotation task needs other views than
SimCLR), so the unlabeled module hands over uint8 images and the pretrainer augments them.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from robust_ssl.data.augment import CropFlip, to_unit_float
from robust_ssl.data.sources import Split, load_split
from robust_ssl.data.subsets import check_fraction, stratified_split


class TensorBatches(Dataset):
    """Indexed by a list of indices: returns the whole batch in one tensor operation."""

    def __init__(self, *tensors: torch.Tensor):
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, indices: list[int]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        batch = tuple(tensor[index] for tensor in self.tensors)
        return batch[0] if len(batch) == 1 else batch


def batch_loader(*tensors: torch.Tensor, batch_size: int, shuffle: bool, drop_last: bool = False
                 ) -> DataLoader:
    dataset = TensorBatches(*tensors)
    order = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last), batch_size=None,
                      pin_memory=torch.cuda.is_available())


class UnlabeledDataModule(pl.LightningDataModule):
    """Images without labels for pretraining: CIFAR-100 train by default, as in the paper.

    `dataset` may be "cifar10" (in-domain pretraining), "cifar100" or an image-folder path;
    `fraction` < 1 keeps a stratified, seeded subset of the images (for quick profiles).
    Batches are uint8 image tensors N×3×H×W.
    """

    def __init__(self, dataset: str = "cifar100", data_dir: str = "data", batch_size: int = 256,
                 fraction: float = 1.0, seed: int = 0, download: bool = False):
        super().__init__()
        check_fraction(fraction)
        self.save_hyperparameters()
        self.images: torch.Tensor | None = None

    def prepare_data(self) -> None:
        load_split(self.hparams.dataset, "train", self.hparams.data_dir, self.hparams.download)

    def setup(self, stage: str | None = None) -> None:
        if self.images is not None:
            return
        train = load_split(self.hparams.dataset, "train", self.hparams.data_dir)
        keep, _ = stratified_split(train.labels, self.hparams.fraction, seed=self.hparams.seed)
        self.images = train.images[keep]

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.images, batch_size=self.hparams.batch_size, shuffle=True,
                            drop_last=True)


class LabeledDataModule(pl.LightningDataModule):
    """A labeled dataset (CIFAR-10 by default) as a stratified label fraction, validation, test.

    A `val_fraction` of each class is held out before `fraction` of the rest is taken, so the
    validation set is the same for every fraction; `test_fraction` < 1 evaluates on a stratified
    subset of the test split (for quick profiles). Training batches get the standard pad-crop
    and flip when `augment` is on; every batch becomes float [0, 1] on the device.
    """

    def __init__(self, dataset: str = "cifar10", data_dir: str = "data", fraction: float = 1.0,
                 val_fraction: float = 0.1, seed: int = 0, batch_size: int = 128,
                 eval_batch_size: int = 512, augment: bool = True, download: bool = False,
                 test_fraction: float = 1.0):
        super().__init__()
        check_fraction(fraction)
        check_fraction(test_fraction, "test_fraction")
        self.save_hyperparameters()
        self.crop_flip = CropFlip()
        self.train: Split | None = None
        self.train_is_features = False

    def prepare_data(self) -> None:
        for split in ("train", "test"):
            load_split(self.hparams.dataset, split, self.hparams.data_dir, self.hparams.download)

    def setup(self, stage: str | None = None) -> None:
        if self.train is not None:
            return
        hp = self.hparams
        full = load_split(hp.dataset, "train", hp.data_dir)
        train_idx, val_idx = stratified_split(full.labels, hp.fraction, hp.val_fraction, hp.seed)
        self.train = Split(full.images[train_idx], full.labels[train_idx], full.classes)
        self.val = Split(full.images[val_idx], full.labels[val_idx], full.classes)
        test = load_split(hp.dataset, "test", hp.data_dir)
        keep, _ = stratified_split(test.labels, hp.test_fraction, seed=hp.seed)
        self.test = Split(test.images[keep], test.labels[keep], test.classes)

    def use_train_features(self, features: torch.Tensor) -> None:
        """Train on precomputed features in place of images (a linear probe on a frozen
        encoder): the same order and labels, and no augmentation."""
        if len(features) != len(self.train):
            raise ValueError(f"{len(features)} features for {len(self.train)} training images")
        self.train = Split(features, self.train.labels, self.train.classes)
        self.train_is_features = True

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)

    def train_dataloader(self) -> DataLoader:
        return batch_loader(self.train.images, self.train.labels,
                            batch_size=self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if len(self.val) == 0:  # val_fraction=0: no validation loop
            return []
        return batch_loader(self.val.images, self.val.labels,
                            batch_size=self.hparams.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return batch_loader(self.test.images, self.test.labels,
                            batch_size=self.hparams.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        if training and self.hparams.augment and not self.train_is_features:
            return self.crop_flip(images), labels
        return to_unit_float(images), labels
