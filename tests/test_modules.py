import pytest
import pytorch_lightning as pl
import torch

from robust_ssl.data.modules import LabeledDataModule, ShardedBatches, UnlabeledDataModule
from robust_ssl.errors import DataError
from robust_ssl.finetune import FineTuner
from tests.conftest import write_image_folder
from tests.toy import ToyClassifier


def make_trainer(**kwargs):
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, **kwargs)


def test_labeled_module_splits_fraction_validation_and_test(image_folder):
    data_dir, written = image_folder
    data = LabeledDataModule(data_dir=str(data_dir), fraction=0.5, val_fraction=0.25,
                             batch_size=4, eval_batch_size=5)
    data.setup("fit")
    # 20 train images per class: 5 held out for validation, half of the other 15 rounds to 8.
    assert torch.bincount(data.train.labels).tolist() == [8, 8, 8]
    assert torch.bincount(data.val.labels).tolist() == [5, 5, 5]
    assert len(data.test) == 12 and data.num_classes == 3
    images, labels = next(iter(data.train_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (4, 3, 32, 32)
    assert labels.dtype == torch.int64
    assert sum(len(y) for _, y in data.val_dataloader()) == 15


def test_test_fraction_keeps_a_stratified_subset(image_folder):
    data_dir, _ = image_folder
    data = LabeledDataModule(data_dir=str(data_dir), test_fraction=0.5)
    data.setup("test")
    assert torch.bincount(data.test.labels).tolist() == [2, 2, 2]


def epoch_labels(loader, epoch):
    loader.sampler.set_epoch(epoch)
    return torch.cat([y for _, y in loader])


def test_train_order_comes_from_seed_and_epoch_and_eval_loader_keeps_order(image_folder,
                                                                           monkeypatch):
    data_dir, _ = image_folder
    data = LabeledDataModule(data_dir=str(data_dir), val_fraction=0.0, batch_size=7)
    data.setup("fit")
    loader = data.train_dataloader()
    first = epoch_labels(loader, 0)
    assert sorted(first.tolist()) == sorted(data.train.labels.tolist())  # each image once
    assert not torch.equal(first, epoch_labels(loader, 1))  # a new order every epoch
    torch.manual_seed(123)  # the global generator (augmentation, attacks) plays no part
    assert torch.equal(first, epoch_labels(data.train_dataloader(), 0))
    # the run's seed (seed_everything) orders; the data's seed only picks label subsets
    other_subset_seed = LabeledDataModule(data_dir=str(data_dir), val_fraction=0.0,
                                          batch_size=7, seed=1)
    other_subset_seed.setup("fit")
    assert torch.equal(epoch_labels(other_subset_seed.train_dataloader(), 0), first)
    monkeypatch.setenv("PL_GLOBAL_SEED", "1")
    assert not torch.equal(epoch_labels(data.train_dataloader(), 0), first)
    test_batches = list(data.test_dataloader())
    assert torch.cat([y for _, y, _ in test_batches]).tolist() == data.test.labels.tolist()
    assert torch.cat([i for _, _, i in test_batches]).tolist() == list(range(len(data.test)))
    assert data.val_dataloader() == []


def test_batches_become_float_pixels_and_only_training_is_augmented(image_folder):
    data_dir, _ = image_folder
    data = LabeledDataModule(data_dir=str(data_dir), val_fraction=0.2, batch_size=8)
    model = ToyClassifier()
    make_trainer(max_epochs=1, limit_train_batches=2).fit(model, data)
    make_trainer().test(model, data)
    stages = {stage for stage, *_ in model.seen}
    assert stages == {"train", "val", "test"}
    assert all(dtype == torch.float32 and 0 <= lo <= hi <= 1 for _, dtype, lo, hi in model.seen)
    # Evaluation batches are the stored pixels / 255, exactly.
    batch = next(iter(data.test_dataloader()))
    images, _, index = data.on_after_batch_transfer(batch, 0)
    assert index.tolist() == list(range(len(images)))
    torch.testing.assert_close(images, data.test.images[:len(images)].float() / 255)


def test_unlabeled_module_yields_uint8_images_without_labels(image_folder):
    data_dir, _ = image_folder
    data = UnlabeledDataModule(dataset="cifar10", data_dir=str(data_dir), batch_size=16,
                               fraction=0.5)
    data.prepare_data()
    data.setup("fit")
    assert len(data.images) == 30
    batches = list(data.train_dataloader())
    assert len(batches) == 1  # 30 images, batch 16, last partial batch dropped
    assert isinstance(batches[0], torch.Tensor) and batches[0].shape == (16, 3, 32, 32)
    assert batches[0].dtype == torch.uint8


def test_one_class_is_refused_and_the_class_count_comes_from_the_data(tmp_path):
    write_image_folder(tmp_path / "one", {"train": 10, "test": 2}, classes=("cat",))
    with pytest.raises(DataError, match="1 class \\(cat\\): a classifier needs at least two"):
        LabeledDataModule(dataset=str(tmp_path / "one"), data_dir=str(tmp_path)).setup("fit")
    write_image_folder(tmp_path / "four", {"train": 10, "test": 2}, classes=("a", "b", "c", "d"))
    data = LabeledDataModule(dataset=str(tmp_path / "four"), data_dir=str(tmp_path))
    data.setup("fit")
    model = FineTuner(stem="imagenet", freeze="full")
    make_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(model, data)
    assert model.classifier.out_features == 4 and model.hparams.num_classes == 4


def test_pretraining_set_smaller_than_a_batch_fails_at_once(image_folder):
    data_dir, _ = image_folder  # 60 train images
    data = UnlabeledDataModule(dataset="cifar10", data_dir=str(data_dir), batch_size=64)
    with pytest.raises(DataError, match="60 pretraining images .* fewer than one batch of 64"):
        data.setup("fit")


def test_limits_cap_validation_and_test_sets_on_any_data_size(image_folder):
    data_dir, _ = image_folder
    data = LabeledDataModule(data_dir=str(data_dir), val_fraction=0.5, val_limit=6, test_limit=3,
                             train_limit=9)
    data.setup("test")
    assert torch.bincount(data.train.labels).tolist() == [3, 3, 3]
    assert torch.bincount(data.val.labels).tolist() == [2, 2, 2]
    assert torch.bincount(data.test.labels).tolist() == [1, 1, 1]


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_take_disjoint_slices_of_one_permutation(world_size):
    """Sharding without a process group: each rank's sampler alone, as each process sees it."""
    size, batch = 60, 4
    per_rank = [list(ShardedBatches(size, batch, shuffle=True, seed=5, rank=r,
                                  world_size=world_size)) for r in range(world_size)]
    assert len({len(batches) for batches in per_rank}) == 1  # same number of steps everywhere
    used = [i for batches in per_rank for b in batches for i in b.tolist()]
    assert sorted(used) == list(range(size))  # 60 divides by 1, 2 and 3: each image once


@pytest.mark.parametrize("size", [60, 61, 62])
def test_evaluation_shards_are_never_padded(size):
    per_rank = [list(ShardedBatches(size, 8, shuffle=False, rank=r, world_size=3))
                for r in range(3)]
    used = sorted(i for batches in per_rank for b in batches for i in b.tolist())
    assert used == list(range(size))  # every image once, none twice, whatever the size
    for rank, batches in enumerate(per_rank):
        assert len(batches) == len(ShardedBatches(size, 8, False, rank=rank, world_size=3))
