import itertools
from functools import partial

import pytest
import torch

from robust_ssl.errors import RobustSSLError
from robust_ssl.pretrain import (AdversarialSimCLRTask, BarlowTwinsTask, BYOLTask, JigsawTask,
                                 MoCoTask, Pretrainer, RotationTask, SimCLRTask)
from robust_ssl.pretrain.jigsaw import cut_tiles, permutation_set
from robust_ssl.pretrain.rotation import rotations


def test_rotation_labels_match_the_rotations_applied():
    images = torch.rand(3, 3, 8, 8)
    rotated, labels = rotations(images)
    assert labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for image_index in range(3):
        for k in range(4):
            turned_back = torch.rot90(rotated[k * 3 + image_index], -k, dims=(1, 2))
            assert torch.equal(turned_back, images[image_index])


@pytest.mark.parametrize("tiles,size", [(4, 24), (4, 10), (9, 30)])
def test_permutations_are_distinct_and_far_apart(tiles, size):
    perms = permutation_set(tiles, size)
    assert perms.shape == (size, tiles)
    assert all(sorted(p) == list(range(tiles)) for p in perms.tolist())
    assert len({tuple(p) for p in perms.tolist()}) == size
    min_distance = min((a != b).sum().item() for a, b in itertools.combinations(perms, 2))
    # greedy max-min selection: 9 tiles keep at least 7 differing positions in 30 permutations,
    # 4 tiles at least 2 (any two distinct permutations differ in 2 places)
    assert min_distance >= (7 if tiles == 9 else 2)
    assert torch.equal(perms, permutation_set(tiles, size))  # fixed for a seed


def test_four_permutations_of_four_tiles_form_a_latin_square():
    chosen = permutation_set(4, 4)
    # four permutations of 4 tiles can all differ everywhere (a Latin square): greedy finds it
    assert min((a != b).sum().item() for a, b in itertools.combinations(chosen, 2)) == 4


def test_tiles_put_back_by_the_inverse_permutation_give_the_original_image():
    task = JigsawTask(grid=2, jitter=0)
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(0)
    shuffled, labels = task.puzzle(images)
    inverse = torch.argsort(task.permutations[labels], dim=1)
    restored = shuffled[torch.arange(5)[:, None], inverse]                # N × 4 × C × 16 × 16
    top = torch.cat([restored[:, 0], restored[:, 1]], dim=3)
    bottom = torch.cat([restored[:, 2], restored[:, 3]], dim=3)
    torch.testing.assert_close(torch.cat([top, bottom], dim=2), images.float() / 255)


def test_jittered_tiles_come_from_inside_their_cells():
    images = torch.arange(32 * 32, dtype=torch.float32).view(1, 1, 32, 32).repeat(4, 3, 1, 1)
    tiles = cut_tiles(images, grid=2, jitter=2)
    assert tiles.shape == (4, 4, 3, 14, 14)
    rows, cols = tiles[:, :, 0, 0, 0] // 32, tiles[:, :, 0, 0, 0] % 32
    for index, (r0, c0) in enumerate([(0, 0), (0, 16), (16, 0), (16, 16)]):
        assert ((rows[:, index] >= r0) & (rows[:, index] <= r0 + 2)).all()
        assert ((cols[:, index] >= c0) & (cols[:, index] <= c0 + 2)).all()
    offsets = {tuple(t) for t in torch.stack([rows, cols], -1).view(-1, 2).tolist()}
    assert len(offsets) > 4  # the offsets vary between images and tiles


def test_multitask_loss_is_the_weighted_sum_of_task_losses():
    torch.manual_seed(0)
    model = Pretrainer([SimCLRTask(), RotationTask(), JigsawTask()], weights=[1.0, 0.5, 2.0],
                       stem="imagenet").eval()
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    torch.manual_seed(1)
    losses = model.task_losses(images)
    torch.manual_seed(1)
    total = model.loss(images)
    assert list(losses) == ["simclr", "rotation", "jigsaw"]
    expected = losses["simclr"] + 0.5 * losses["rotation"] + 2.0 * losses["jigsaw"]
    torch.testing.assert_close(total, expected)


@pytest.mark.parametrize("task", [RotationTask, JigsawTask, SimCLRTask,
                                  partial(AdversarialSimCLRTask, steps=2), BYOLTask,
                                  BarlowTwinsTask, partial(MoCoTask, queue_size=64)],
                         ids=["rotation", "jigsaw", "simclr", "adv_simclr", "byol",
                              "barlow_twins", "moco"])
def test_a_few_steps_of_each_task_lower_its_loss(task):
    """Adversarial SimCLR with dual BatchNorm: the attack and its random start repeat too.
    Momentum tasks move their networks after each step, as the pretrainer does; MoCo's queue
    is held fixed, or it would fill with this very batch's keys (negatives that are copies of
    the positives) and the steps' losses would not be comparable."""
    torch.manual_seed(0)
    task = task()
    model = Pretrainer([task], stem="imagenet", dual_batchnorm=getattr(task, "adversarial", False))
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    queue = task.queue.keys.clone() if isinstance(task, MoCoTask) else None
    losses = []
    for step in range(8):
        if queue is not None:
            task.queue.keys.copy_(queue)
        torch.manual_seed(1)  # the same augmentation at every step
        loss = model.loss(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if hasattr(task, "after_optimizer_step"):
            task.after_optimizer_step(model.encoder, step, 8)
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses


def test_bad_task_lists_are_clear_errors():
    with pytest.raises(RobustSSLError, match="at least one task"):
        Pretrainer([])
    with pytest.raises(RobustSSLError, match="once"):
        Pretrainer([RotationTask(), RotationTask()])
    with pytest.raises(RobustSSLError, match="one per task"):
        Pretrainer([RotationTask(), JigsawTask()], weights=[1.0])


def test_every_task_builds_its_heads_for_the_backbones_width():
    """Heads are made at `bind`, for the encoder's feature_dim: any backbone serves any task."""
    torch.manual_seed(0)
    tasks = [SimCLRTask(), RotationTask(), JigsawTask(), BYOLTask(),
             BarlowTwinsTask(projection_dim=64), MoCoTask(queue_size=64)]
    model = Pretrainer(tasks, backbone="resnet50", stem="imagenet")
    assert model.encoder.feature_dim == 2048
    assert tasks[0].projection[0].in_features == 2048 and tasks[1].head.in_features == 2048
    assert tasks[2].head[0].in_features == 4 * 2048
    losses = model.task_losses(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8))
    assert all(torch.isfinite(loss) for loss in losses.values()), losses
