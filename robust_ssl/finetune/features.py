"""A clean linear probe sees the same frozen features every epoch: compute them once, before
training, and hand them to the datamodule in place of its training images."""

from __future__ import annotations

import pytorch_lightning as pl

from robust_ssl.models.features import encode


class CacheFrozenFeatures(pl.Callback):
    """Added by the FineTuner itself (`configure_callbacks`) when it can train on cached
    features: a frozen encoder, no adversarial examples. The datamodule must offer
    `use_train_features` (LabeledDataModule does)."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if stage != "fit" or datamodule is None or pl_module.trains_on_features:
            return
        datamodule.setup("fit")
        device = trainer.strategy.root_device
        features = encode(pl_module.encoder.to(device), datamodule.train.images, normalize=False)
        datamodule.use_train_features(features)
        pl_module.trains_on_features = True
