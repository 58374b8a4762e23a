"""Checks that need a CUDA GPU; skipped without one (the prepared GPU check runs them)."""

import pytest
import pytorch_lightning as pl
import torch

from robust_ssl.data.modules import LabeledDataModule, UnlabeledDataModule
from robust_ssl.pretrain.losses import nt_xent

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


def test_batched_image_ops_give_the_same_images_on_the_gpu():
    from robust_ssl.data import image_ops

    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32)
    boxes = image_ops.crop_boxes(64, 32, 32, scale=(0.08, 1.0))
    factor, sigma, flip = torch.rand(64) * 0.8 + 0.6, torch.rand(64) + 0.1, torch.rand(64) < 0.5
    for op, args in ((image_ops.resized_crop, (*boxes, flip)), (image_ops.adjust_hue, (factor - 1,)),
                     (image_ops.adjust_contrast, (factor,)), (image_ops.gaussian_blur3, (sigma,))):
        on_gpu = op(x.cuda(), *(a.cuda() for a in args))
        torch.testing.assert_close(on_gpu.cpu(), op(x, *args), atol=1e-5, rtol=0)


def test_training_steps_never_wait_for_the_gpu():
    """In sync-debug 'error' mode any host-device synchronisation raises: a SimCLR step and
    an FGSM fine-tuning step, each from cutting the batch to the optimiser step."""
    from robust_ssl.data.modules import TensorBatches
    from robust_ssl.finetune import FineTuner
    from robust_ssl.pretrain import Pretrainer, SimCLRTask

    images = torch.randint(0, 256, (512, 3, 32, 32), dtype=torch.uint8, device="cuda")
    labels = torch.randint(0, 10, (512,), device="cuda")
    data = TensorBatches(images, labels)
    simclr = Pretrainer([SimCLRTask()]).cuda().to(memory_format=torch.channels_last)
    finetuner = FineTuner(num_classes=10, freeze="full", adversarial=True).cuda()
    finetuner.log = lambda *args, **kwargs: None
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, fused=True)
                  for m in (simclr, finetuner)]

    def steps():
        batch, targets = data[torch.randperm(512)[:128]]
        with torch.autocast("cuda", dtype=torch.bfloat16):  # as bf16-mixed training runs
            losses = (simclr.loss(batch),
                      finetuner.training_step((batch.float() / 255, targets), 0))
        for loss, optimizer in zip(losses, optimizers):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    steps()  # warm-up: cuDNN's algorithm search may synchronise once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        steps()
    finally:
        torch.cuda.set_sync_debug_mode("default")
