"""SimCLR pretraining (Chen et al. 2020; the paper's section 3.1)."""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch

from robust_ssl.data.augment import SimCLRViews
from robust_ssl.losses import nt_xent
from robust_ssl.models.backbone import ResNet18Encoder, Stem
from robust_ssl.models.heads import ProjectionHead
from robust_ssl.pretrain.optim import exponential_decay


class SimCLR(pl.LightningModule):
    """Encoder + projection head trained with NT-Xent on two augmented views of each image.

    Defaults follow the paper where it speaks (ResNet-18, MLP head, exponentially decaying
    learning rate) and SimCLR's CIFAR recipe where it does not (τ = 0.5, 128-d projections).
    Optimiser: SGD with momentum 0.9, lr 0.12 at batch 256 and weight decay 5e-4, the rates of
    lightly's CIFAR-10 SimCLR benchmark, decayed exponentially to 1% over the run in place of
    their cosine. Both views go through the encoder as one batch, so BatchNorm sees 2N images.
    """

    def __init__(
        self,
        stem: Stem = "cifar",
        projection_hidden_dim: int = 512,
        projection_dim: int = 128,
        temperature: float = 0.5,
        optimizer: Literal["sgd", "adam"] = "sgd",
        lr: float = 0.12,
        weight_decay: float = 5e-4,
        momentum: float = 0.9,
        final_lr_ratio: float = 0.01,
        gather_distributed: bool = True,
        channels_last: bool = True,
        compile: bool = False,
        views: SimCLRViews | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["views"])
        self.encoder = ResNet18Encoder(stem)
        self.projection = ProjectionHead(ResNet18Encoder.feature_dim, projection_hidden_dim,
                                         projection_dim)
        self.views = views or SimCLRViews()

    def configure_model(self) -> None:
        if self.hparams.compile:
            self.encoder.compile()

    def on_fit_start(self) -> None:
        if self.hparams.channels_last and self.device.type == "cuda":
            self.to(memory_format=torch.channels_last)

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        """NT-Xent of a batch of uint8 images, augmented into two views on their device."""
        view_a, view_b = self.views(images)
        views = torch.cat([view_a, view_b])
        if self.hparams.channels_last and views.is_cuda:
            views = views.contiguous(memory_format=torch.channels_last)
        z_a, z_b = self.projection(self.encoder(views)).chunk(2)
        return nt_xent(z_a, z_b, self.hparams.temperature, self.hparams.gather_distributed)

    def training_step(self, images: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.loss(images)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True,
                 batch_size=len(images))
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        return exponential_decay(self, hp.optimizer, hp.lr, hp.weight_decay, hp.momentum,
                                 hp.final_lr_ratio)
