"""Checks that need a CUDA GPU; skipped without one (the prepared GPU check runs them)."""

import pytest
import pytorch_lightning as pl
import torch

from robust_ssl.data.modules import LabeledDataModule, UnlabeledDataModule
from robust_ssl.losses import nt_xent

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


class BatchDevices(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer, self.devices = torch.nn.Linear(1, 1), set()

    def training_step(self, batch, batch_idx):
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.devices.add(images.device.type)
        return self.layer(images.float().mean().reshape(1, 1)).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_splits_live_on_the_gpu_and_batches_are_cut_there(image_folder):
    data_dir, _ = image_folder
    for data in (UnlabeledDataModule(dataset="cifar10", data_dir=str(data_dir), batch_size=8),
                 LabeledDataModule(data_dir=str(data_dir), batch_size=8)):
        model = BatchDevices()
        pl.Trainer(accelerator="gpu", devices=1, max_epochs=1, logger=False,
                   enable_checkpointing=False, limit_val_batches=0).fit(model, data)
        stored = data.images if isinstance(data, UnlabeledDataModule) else data.train.images
        assert stored.is_cuda and model.devices == {"cuda"}


def test_bf16_nt_xent_is_close_to_fp32():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(256, 128, device="cuda"), torch.randn(256, 128, device="cuda")
    exact = nt_xent(z_a, z_b, 0.5)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        mixed = nt_xent(z_a.bfloat16(), z_b.bfloat16(), 0.5)
    torch.testing.assert_close(mixed.float(), exact, rtol=1e-2, atol=1e-2)
