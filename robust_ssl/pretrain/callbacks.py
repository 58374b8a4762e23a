"""Callbacks every pretext task shares: the kNN monitor and the encoder export.

They only assume that the LightningModule has an `encoder` attribute, so a new pretext task
gets both by composition, not by inheriting from a base class.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info

from robust_ssl.data.sources import load_split
from robust_ssl.data.subsets import stratified_limit, stratified_split
from robust_ssl.pretrain.knn import knn_accuracy
from robust_ssl.models.export import save_encoder


class KNNMonitor(pl.Callback):
    """Logs `knn/acc`: weighted kNN (k=200, cosine, τ=0.1) of the encoder's features.

    The bank is the labeled train split of `dataset`, the queries its test split (stratified
    subsets when the fractions are below 1, or capped at about `bank_limit` / `query_limit`
    images, to keep CPU checks short). Runs before training (`at_start`, the
    random-initialisation baseline), every `every_n_epochs` and after the last epoch.
    `data_dir` and `resize` default to the datamodule's.
    """

    def __init__(self, dataset: str = "cifar10", data_dir: str | None = None,
                 every_n_epochs: int = 10, k: int = 200, temperature: float = 0.1,
                 bank_fraction: float = 1.0, query_fraction: float = 1.0, at_start: bool = True,
                 seed: int = 0, bank_limit: int | None = None, query_limit: int | None = None):
        super().__init__()
        self.dataset, self.data_dir, self.every_n_epochs = dataset, data_dir, every_n_epochs
        self.k, self.temperature, self.at_start, self.seed = k, temperature, at_start, seed
        self.fractions = {"train": bank_fraction, "test": query_fraction}
        self.limits = {"train": bank_limit, "test": query_limit}
        self.history: list[tuple[int, float]] = []
        self._data = None

    def setup(self, trainer, pl_module, stage):
        if self._data is not None:
            return
        datamodule_hparams = getattr(trainer.datamodule, "hparams", {})
        data_dir = self.data_dir or datamodule_hparams.get("data_dir", "data")
        resize = datamodule_hparams.get("resize", False)
        self._data = {}
        for split, fraction in self.fractions.items():
            loaded = load_split(self.dataset, split, data_dir, resize=resize)
            keep, _ = stratified_split(loaded.labels, fraction, seed=self.seed)
            keep = keep[stratified_limit(loaded.labels[keep], self.limits[split], self.seed)]
            self._data[split] = (loaded.images[keep], loaded.labels[keep])

    def on_train_start(self, trainer, pl_module):
        if self.at_start and trainer.current_epoch == 0:
            self._check(trainer, pl_module, epoch=0)

    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch + 1
        if epoch % self.every_n_epochs == 0 or epoch == trainer.max_epochs:
            self._check(trainer, pl_module, epoch)

    def _check(self, trainer, pl_module, epoch: int) -> None:
        if not trainer.is_global_zero:
            return
        (bank, bank_labels), (queries, query_labels) = self._data["train"], self._data["test"]
        accuracy = knn_accuracy(pl_module.encoder, bank, bank_labels, queries, query_labels,
                                self.k, self.temperature)
        self.history.append((epoch, accuracy))
        for logger in trainer.loggers:
            logger.log_metrics({"knn/acc": accuracy, "knn/epoch": epoch}, step=trainer.global_step)
        rank_zero_info(f"kNN accuracy ({self.dataset}, k={self.k}) after epoch {epoch}: "
                       f"{accuracy:.2%}")


class ExportEncoder(pl.Callback):
    """Writes the encoder's weights alone to `path` (default: `encoder.pt` in the trainer's
    `default_root_dir`) when training ends (see models/export.py)."""

    def __init__(self, path: str | None = None):
        super().__init__()
        self.path = path

    def on_train_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        hparams = {k: v for k, v in dict(pl_module.hparams).items()
                   if isinstance(v, (bool, int, float, str, type(None)))}
        pretext = getattr(pl_module, "pretext_name", type(pl_module).__name__)
        dataset = getattr(trainer.datamodule, "hparams", {}).get("dataset")
        path = self.path or str(Path(trainer.default_root_dir) / "encoder.pt")
        save_encoder(pl_module.encoder, path, pretext=pretext, dataset=dataset,
                     epochs=trainer.current_epoch, global_step=trainer.global_step,
                     hparams=hparams)
        rank_zero_info(f"encoder saved to {path}")
