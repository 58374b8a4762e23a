import pytorch_lightning as pl
import torch

from robust_ssl.data.modules import LabeledDataModule, UnlabeledDataModule
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


def test_train_loader_reshuffles_and_eval_loader_keeps_order(image_folder):
    data_dir, _ = image_folder
    data = LabeledDataModule(data_dir=str(data_dir), val_fraction=0.0, batch_size=60)
    data.setup("fit")
    first = torch.cat([y for _, y in data.train_dataloader()])
    second = torch.cat([y for _, y in data.train_dataloader()])
    assert sorted(first.tolist()) == sorted(data.train.labels.tolist())
    assert not torch.equal(first, second)
    assert torch.cat([y for _, y in data.test_dataloader()]).tolist() == data.test.labels.tolist()
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
    images, _ = data.on_after_batch_transfer(batch, 0)
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
