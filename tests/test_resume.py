"""An interrupted pretraining resumed from its last checkpoint equals the uninterrupted run."""

from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from robust_ssl.data.modules import UnlabeledDataModule
from robust_ssl.pretrain import BYOLTask, MoCoTask, Pretrainer, SimCLRTask
from robust_ssl.plumbing.resume import AtomicCheckpointIO, RandomState


class Crash(pl.Callback):
    """Dies when epoch `epoch` starts, after the previous epoch's checkpoint was written."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("killed")


def pretrain(data_dir, folder, extra_callbacks=(), ckpt_path=None, random_state=True,
             task=SimCLRTask):
    """The whole pretrainer's state after two epochs: encoder, heads and momentum state."""
    pl.seed_everything(0)
    model = Pretrainer([task()], stem="imagenet", optimizer="sgd", lr=0.1)
    callbacks = [ModelCheckpoint(dirpath=folder, save_last=True), *extra_callbacks]
    callbacks += [RandomState()] if random_state else []
    trainer = pl.Trainer(accelerator="cpu", max_epochs=2, logger=False, callbacks=callbacks,
                         plugins=[AtomicCheckpointIO()], enable_progress_bar=False,
                         enable_model_summary=False)
    data = UnlabeledDataModule(dataset="cifar10", data_dir=str(data_dir), batch_size=20)
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return model.state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("task", [partial(MoCoTask, queue_size=64), BYOLTask],
                         ids=["moco", "byol"])
def test_resumed_momentum_pretraining_equals_the_uninterrupted_run(task, image_folder,
                                                                   tmp_path):
    """The momentum network, MoCo's queue and its pointer resume exactly too."""
    data_dir, _ = image_folder
    uninterrupted = pretrain(data_dir, tmp_path / "a", task=task)
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(data_dir, tmp_path / "b", [Crash(epoch=1)], task=task)
    resumed = pretrain(data_dir, tmp_path / "b", ckpt_path=tmp_path / "b/last.ckpt", task=task)
    assert [name for name, t in uninterrupted.items() if not torch.equal(t, resumed[name])] == []
    momentum = [n for n in uninterrupted if ".target." in n or ".key_encoder." in n
                or ".queue." in n]
    assert momentum  # the comparison covered the momentum state


@pytest.mark.slow
def test_resumed_pretraining_equals_the_uninterrupted_run(image_folder, tmp_path):
    data_dir, _ = image_folder
    uninterrupted = pretrain(data_dir, tmp_path / "a")
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(data_dir, tmp_path / "b", [Crash(epoch=1)])
    resumed = pretrain(data_dir, tmp_path / "b", ckpt_path=tmp_path / "b/last.ckpt")
    differing = [name for name, t in uninterrupted.items() if not torch.equal(t, resumed[name])]
    assert differing == []
    # The check can fail: without the saved random state the augmentations differ.
    with pytest.raises(RuntimeError, match="killed"):
        pretrain(data_dir, tmp_path / "c", [Crash(epoch=1)], random_state=False)
    careless = pretrain(data_dir, tmp_path / "c", ckpt_path=tmp_path / "c/last.ckpt",
                        random_state=False)
    assert any(not torch.equal(t, careless[name]) for name, t in uninterrupted.items())


def test_a_resumed_run_continues_the_same_data_order(tmp_path):
    from robust_ssl.data.modules import UnlabeledDataModule as Unlabeled
    from tests.test_ddp_data import OrderRecorder, write_numbered_images

    write_numbered_images(tmp_path / "images", 30)

    def fit(folder, callbacks=(), ckpt_path=None):
        model = OrderRecorder(str(tmp_path))
        trainer = pl.Trainer(accelerator="cpu", max_epochs=3, logger=False,
                             callbacks=[ModelCheckpoint(dirpath=folder, save_last=True),
                                        RandomState(), *callbacks],
                             enable_progress_bar=False, enable_model_summary=False)
        data = Unlabeled(dataset=str(tmp_path / "images"), data_dir=str(tmp_path), batch_size=10)
        trainer.fit(model, data, ckpt_path=ckpt_path)
        return model.seen

    uninterrupted = fit(tmp_path / "a")
    with pytest.raises(RuntimeError, match="killed"):
        fit(tmp_path / "b", [Crash(epoch=1)])
    resumed = fit(tmp_path / "b", ckpt_path=tmp_path / "b/last.ckpt")
    assert sorted(resumed) == ["train1", "train2"]
    assert resumed == {k: uninterrupted[k] for k in ("train1", "train2")}
