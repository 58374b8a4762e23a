"""Adversarial SimCLR: the contrastive attack, the BatchNorm controls it relies on, and its
training (robust_ssl/pretrain/adversarial_simclr.py, robust_ssl/models/batchnorm.py)."""

import pytest
import torch
from torch import nn

from robust_ssl.errors import RobustSSLError
from robust_ssl.pretrain.losses import nt_xent
from robust_ssl.models.backbone import Encoder
from robust_ssl.models.batchnorm import (DualBatchNorm2d, batchnorm_branch, frozen_statistics,
                                         single_batchnorm, with_dual_batchnorm)
from robust_ssl.models.export import load_encoder, save_encoder
from robust_ssl.pretrain import AdversarialSimCLRTask, Pretrainer, RotationTask, SimCLRTask

EPS = 8 / 255


def batchnorm_buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.clone() for name, b in module.named_buffers()
            if "running" in name or "num_batches" in name}


def setup(dual: bool = False, steps: int = 3):
    torch.manual_seed(0)
    model = Pretrainer([AdversarialSimCLRTask(steps=steps)], stem="imagenet", dual_batchnorm=dual)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    return model, model.tasks[0], images


def test_the_attack_raises_nt_xent_inside_the_ball_and_the_unit_cube():
    model, task, images = setup(steps=5)
    view_a, view_b = task.views(images)
    positive = task.projection(model.encode(view_b)).detach()

    def contrastive(x):
        return nt_xent(task.projection(model.encode(x, update_statistics=False)), positive,
                       task.temperature).item()

    attacked = task.attack(model.encode, view_a, positive)
    assert contrastive(attacked) > contrastive(view_a) + 0.05
    assert (attacked - view_a).abs().max() <= EPS + 1e-6
    assert attacked.min() >= 0 and attacked.max() <= 1


def test_the_attack_leaves_modes_gradients_and_batchnorm_statistics_untouched():
    model, task, images = setup(dual=True)
    model.train()
    model.tasks.eval()  # a mix of modes, each of which must survive
    view_a, view_b = task.views(images)
    positive = task.projection(model.encode(view_b)).detach()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    modes = {name: m.training for name, m in model.named_modules()}
    statistics = batchnorm_buffers(model)
    task.attack(model.encode, view_a, positive)
    assert {name: m.training for name, m in model.named_modules()} == modes
    assert all(torch.equal(p.grad, torch.full_like(p, 0.5)) for p in model.parameters())
    after = batchnorm_buffers(model)
    assert all(torch.equal(statistics[name], after[name]) for name in statistics)
    model.encode(view_a)  # an ordinary forward does update them: the check can fail
    assert not torch.equal(statistics["encoder.net.bn1.clean.running_mean"],
                           model.encoder.net.bn1.clean.running_mean)


def test_frozen_statistics_still_normalise_with_the_batch():
    layer = nn.BatchNorm2d(3).train()
    x = torch.randn(8, 3, 4, 4) * 5 + 2
    with frozen_statistics(layer):
        out = layer(x)
    assert torch.equal(layer.running_mean, torch.zeros(3)) and layer.num_batches_tracked == 0
    torch.testing.assert_close(out, nn.BatchNorm2d(3).train()(x))
    assert layer.track_running_stats


def test_dual_batchnorm_routes_clean_and_adversarial_views_to_separate_statistics():
    encoder = with_dual_batchnorm(Encoder(stem="imagenet")).train()
    duals = [m for m in encoder.modules() if isinstance(m, DualBatchNorm2d)]
    assert len(duals) == sum(isinstance(m, nn.BatchNorm2d) for m in Encoder().modules())
    for branch in ("adversarial", "clean"):
        before = batchnorm_buffers(encoder)
        with batchnorm_branch(encoder, branch):
            encoder(torch.rand(4, 3, 32, 32))
        moved = {name for name, b in batchnorm_buffers(encoder).items()
                 if not torch.equal(b, before[name])}
        assert moved and all(f".{branch}." in name for name in moved)
    assert all(dual.route is None for dual in duals)  # unrouted again afterwards


def test_the_export_of_a_dual_batchnorm_encoder_is_its_adversarial_branch(tmp_path):
    model, task, images = setup(dual=True)
    model.train()
    model.loss(images)  # both branches see a batch, so they differ
    model.eval()
    x = torch.rand(4, 3, 32, 32)
    with batchnorm_branch(model.encoder, "adversarial"):
        expected = model.encoder(x)
    with batchnorm_branch(model.encoder, "clean"):
        clean = model.encoder(x)
    assert not torch.allclose(expected, clean)
    plain = Encoder(stem="imagenet").eval()
    load_encoder(plain, save_encoder(model.encoder, tmp_path / "encoder.pt"))
    torch.testing.assert_close(plain(x), expected)
    torch.testing.assert_close(single_batchnorm(model.encoder)(x), expected)


def test_its_loss_is_simclrs_plus_the_weighted_adversarial_term():
    model, task, images = setup()
    model.eval()  # fixed statistics: the terms can be recomputed exactly
    torch.manual_seed(1)
    total = model.loss(images)
    torch.manual_seed(1)
    view_a, view_b = task.views(images)
    z_a, z_b = task.projection(model.encode(torch.cat([view_a, view_b]))).chunk(2)
    attacked = task.attack(model.encode, view_a, z_b.detach())
    z_adv = task.projection(model.encode(attacked, branch="adversarial"))
    expected = nt_xent(z_a, z_b, task.temperature) + nt_xent(z_adv, z_b, task.temperature)
    torch.testing.assert_close(total, expected)


def test_it_joins_the_multitask_pretrainer():
    torch.manual_seed(0)
    model = Pretrainer([AdversarialSimCLRTask(steps=1), RotationTask()], stem="imagenet",
                       dual_batchnorm=True)
    losses = model.task_losses(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8))
    assert list(losses) == ["adv_simclr", "rotation"] and all(v.isfinite() for v in losses.values())


def test_bad_settings_are_clear_errors():
    with pytest.raises(RobustSSLError, match="eps=2 is outside"):
        AdversarialSimCLRTask(eps=2)
    with pytest.raises(RobustSSLError, match="steps=0"):
        AdversarialSimCLRTask(steps=0)
    with pytest.raises(RobustSSLError, match="dual_batchnorm needs an adversarial task"):
        Pretrainer([SimCLRTask()], dual_batchnorm=True)
    with pytest.raises(RobustSSLError, match="exported_branch='robust'"):
        Pretrainer([AdversarialSimCLRTask()], exported_branch="robust")
