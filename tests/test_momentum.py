"""Momentum networks (pretrain/momentum.py), MoCo's key queue, and how the pretrainer drives
them: the EMA after every optimiser step, never optimised, in a multi-task combination too."""

import collections

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from robust_ssl.data.modules import UnlabeledDataModule
from robust_ssl.errors import RobustSSLError
from robust_ssl.pretrain import BYOLTask, MoCoTask, Pretrainer, SimCLRTask
from robust_ssl.pretrain.moco import KeyQueue
from robust_ssl.pretrain.momentum import MomentumCopy, cosine_momentum


def test_momentum_copy_moves_its_parameters_by_the_ema_and_leaves_its_buffers():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    copy = MomentumCopy(online)
    before = [p.clone() for p in copy.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
        online[1].running_mean.fill_(5.0)
    copy.update(online, momentum=0.9)
    for old, new, source in zip(before, copy.parameters(), online.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * source)
        assert not new.requires_grad
    assert torch.equal(copy.module[1].running_mean, torch.zeros(2))
    with pytest.raises(ValueError, match="same architecture"):
        copy.update(nn.Linear(3, 2), momentum=0.9)


def test_cosine_momentum_rises_from_base_to_one_as_lightlys_schedule():
    """lightly's schedule reaches 1 at its step max_steps − 1; ours at step `total_steps`."""
    scheduler = pytest.importorskip("lightly.utils.scheduler")
    assert cosine_momentum(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_momentum(50, 100, 0.99) == pytest.approx(0.995)
    assert cosine_momentum(100, 100, 0.99) == pytest.approx(1.0)
    for step in (0, 13, 77, 100):
        assert cosine_momentum(step, 100, 0.996) == pytest.approx(
            scheduler.cosine_schedule(step, 101, 0.996, 1.0), abs=1e-12)


def test_key_queue_replaces_the_oldest_keys_first():
    queue = KeyQueue(size=5, dim=2)
    naive = collections.deque(queue.keys.tolist(), maxlen=5)  # the oldest is dropped first
    torch.manual_seed(0)
    for n in (2, 2, 3, 7):  # wraps around, and a push longer than the queue
        keys = torch.nn.functional.normalize(torch.randn(n, 2), dim=1)
        queue.push(keys)
        naive.extend(keys.tolist())
        start = int(queue.pointer)  # the next slot to replace holds the oldest key
        order = [(start + i) % 5 for i in range(5)]
        torch.testing.assert_close(queue.keys[order], torch.tensor(list(naive)))


class CountSteps(pl.Callback):
    def __init__(self):
        self.steps = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps = trainer.global_step


@pytest.mark.parametrize("task", [BYOLTask, MoCoTask], ids=["byol", "moco"])
def test_a_fit_moves_the_momentum_network_after_each_step_and_never_optimises_it(task,
                                                                                image_folder):
    """Replaying the EMA by hand from the online weights is impossible after the fact, so
    the check is on what must hold: the optimiser has no momentum parameter, the copy has
    moved (and not onto the online network), and it received one update per step."""
    data_dir, _ = image_folder
    torch.manual_seed(0)
    task = task()
    model = Pretrainer([SimCLRTask(), task], stem="imagenet", optimizer="sgd", lr=0.1)
    momentum = task.target if isinstance(task, BYOLTask) else task.key_encoder
    start = [p.clone() for p in momentum.parameters()]
    updates = []
    original = task.after_optimizer_step
    task.after_optimizer_step = lambda *args: (updates.append(args[1]), original(*args))
    counter = CountSteps()
    trainer = pl.Trainer(accelerator="cpu", max_epochs=2, logger=False, callbacks=[counter],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(model, UnlabeledDataModule(dataset="cifar10", data_dir=str(data_dir),
                                           batch_size=20))
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in momentum.parameters()}
    assert updates == list(range(counter.steps)) and counter.steps >= 4  # 0-based step index
    moved = [not torch.equal(a, b) for a, b in zip(start, momentum.parameters())]
    assert all(moved)
    online = task.online(model.encoder)
    assert any(not torch.allclose(a, b) for a, b in zip(online.parameters(),
                                                         momentum.parameters()))


def test_momentum_state_is_in_the_checkpoint_and_the_export_is_the_online_encoder():
    model = Pretrainer([BYOLTask(), MoCoTask(queue_size=64)], stem="imagenet")
    keys = model.state_dict().keys()
    assert any(k.startswith("tasks.0.target.module.0.") for k in keys)
    assert {"tasks.1.queue.keys", "tasks.1.queue.pointer"} <= set(keys)
    assert any(k.startswith("tasks.1.key_encoder.module.0.") for k in keys)
    assert model.encoder is not model.tasks[0].target.module[0]


def test_moco_enqueues_its_keys_in_training_mode_only():
    torch.manual_seed(0)
    task = MoCoTask(queue_size=64)
    model = Pretrainer([task], stem="imagenet")
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    model.eval()
    model.loss(images)
    assert int(task.queue.pointer) == 0
    model.train()
    model.loss(images)
    assert int(task.queue.pointer) == 16  # both views' keys


def test_new_task_settings_out_of_range_are_clear_errors():
    with pytest.raises(RobustSSLError, match="base_momentum"):
        BYOLTask(base_momentum=1.5)
    with pytest.raises(RobustSSLError, match="momentum"):
        MoCoTask(momentum=-0.1)
    with pytest.raises(RobustSSLError, match="queue_size"):
        MoCoTask(queue_size=0)


class SaveMomentumState(pl.Callback):
    """Each rank writes its MoCo queue and key encoder when training ends."""

    def __init__(self, folder):
        self.folder = folder

    def on_train_end(self, trainer, pl_module):
        task = pl_module.tasks[0]
        torch.save({"keys": task.queue.keys, "pointer": task.queue.pointer,
                    "key_encoder": [p.detach() for p in task.key_encoder.parameters()],
                    "steps": trainer.global_step},
                   f"{self.folder}/rank{trainer.global_rank}.pt")


@pytest.mark.slow
def test_moco_under_ddp_keeps_one_queue_and_one_key_encoder_on_both_ranks(image_folder,
                                                                           tmp_path):
    """Two CPU ranks (ddp_spawn): each enqueues the keys of both, so after the fit their
    queues, pointers and key encoders are equal, and the pointer counts both ranks' keys."""
    data_dir, _ = image_folder
    pl.seed_everything(0)
    model = Pretrainer([MoCoTask(queue_size=64)], stem="imagenet", optimizer="sgd", lr=0.1)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[SaveMomentumState(tmp_path)])
    trainer.fit(model, UnlabeledDataModule(dataset="cifar10", data_dir=str(data_dir),
                                           batch_size=10))
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert first["steps"] == 3  # 60 images, 30 a rank, batches of 10
    assert torch.equal(first["keys"], second["keys"])
    assert all(torch.equal(a, b) for a, b in zip(first["key_encoder"], second["key_encoder"]))
    assert int(first["pointer"]) == (3 * 2 * 10 * 2) % 64  # steps × views × batch × ranks
