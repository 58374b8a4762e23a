"""A tiny LightningModule for exercising the data modules and the CLI without a real model."""

import pytorch_lightning as pl
import torch
from torch import nn


class ToyClassifier(pl.LightningModule):
    """Records what each batch looked like when it reached the step."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
        self.seen: list[tuple[str, torch.dtype, float, float]] = []

    def _step(self, stage, batch):
        images, labels, *_ = batch  # test batches also carry each image's index
        self.seen.append((stage, images.dtype, images.min().item(), images.max().item()))
        return nn.functional.cross_entropy(self.net(images), labels)

    def training_step(self, batch, batch_idx):
        return self._step("train", batch)

    def validation_step(self, batch, batch_idx):
        self._step("val", batch)

    def test_step(self, batch, batch_idx):
        self._step("test", batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)
