"""Two gloo processes under Lightning's DDP: each image once per epoch across the ranks, in
training (with augmentation drawing random numbers in between) and in evaluation."""

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from robust_ssl.data.augment import SimCLRViews
from robust_ssl.data.modules import LabeledDataModule, UnlabeledDataModule
from tests.conftest import save_image, write_image_folder


def image_ids(images: torch.Tensor) -> list[int]:
    """The id each test image carries in its first two pixels."""
    return (images[:, 0, 0, 0].long() + 256 * images[:, 0, 0, 1].long()).tolist()


class OrderRecorder(pl.LightningModule):
    """Writes which images each rank saw in each epoch; augments as SimCLR does and draws a
    rank-dependent amount of random numbers, which must not move the data order."""

    def __init__(self, out_dir: str):
        super().__init__()
        self.out_dir, self.layer, self.views = out_dir, nn.Linear(1, 1), SimCLRViews()
        self.seen: dict[str, list[int]] = {}

    def _record(self, stage: str, images: torch.Tensor) -> None:
        self.seen.setdefault(f"{stage}{self.current_epoch}", []).extend(image_ids(images))

    def training_step(self, images, batch_idx):
        self._record("train", images)
        view, _ = self.views(images)
        torch.rand(self.global_rank + 1)
        return self.layer(view.mean().reshape(1, 1)).sum()

    def test_step(self, batch, batch_idx):
        self._record("test", (batch[0] * 255).round().to(torch.uint8))

    def on_train_end(self):
        torch.save(self.seen, f"{self.out_dir}/train-rank{self.global_rank}.pt")

    def on_test_end(self):
        torch.save(self.seen, f"{self.out_dir}/test-rank{self.global_rank}.pt")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def write_numbered_images(folder, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        image = torch.zeros(3, 32, 32, dtype=torch.uint8)
        image[0, 0, 0], image[0, 0, 1] = i % 256, i // 256
        save_image(image, folder / f"{i:04d}.png")


def ddp_trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", logger=False,
                      enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **kwargs)


@pytest.mark.slow
def test_two_ranks_use_every_image_once_per_epoch(tmp_path):
    write_numbered_images(tmp_path / "images", 60)
    data = UnlabeledDataModule(dataset=str(tmp_path / "images"), data_dir=str(tmp_path),
                               batch_size=10)
    ddp_trainer(max_epochs=3).fit(OrderRecorder(str(tmp_path)), data)
    ranks = [torch.load(tmp_path / f"train-rank{r}.pt") for r in range(2)]
    orders = []
    for epoch in range(3):
        seen = [ranks[r][f"train{epoch}"] for r in range(2)]
        assert sorted(seen[0] + seen[1]) == list(range(60)), f"epoch {epoch}"
        orders.append(seen[0] + seen[1])
    assert orders[0] != orders[1] != orders[2]


@pytest.mark.slow
def test_two_ranks_evaluate_every_test_image_once(tmp_path):
    write_image_folder(tmp_path / "data/cifar10", {"train": 4, "test": 1})  # 3 test images
    test_dir = tmp_path / "data/cifar10/test/cat"
    for i in range(1, 13):  # 12 more: 15 in all, which two ranks cannot split evenly
        image = torch.zeros(3, 32, 32, dtype=torch.uint8)
        image[0, 0, 0] = 100 + i
        save_image(image, test_dir / f"n{i:02d}.png")
    data = LabeledDataModule(data_dir=str(tmp_path / "data"), eval_batch_size=4)
    ddp_trainer().test(OrderRecorder(str(tmp_path)), data)
    seen = [torch.load(tmp_path / f"test-rank{r}.pt")["test0"] for r in range(2)]
    data.setup("test")
    assert sorted(seen[0] + seen[1]) == sorted(image_ids(data.test.images))
    assert len(seen[0] + seen[1]) == 15  # no padding: none counted twice


@pytest.mark.slow
def test_adversarial_evaluation_on_two_ranks_equals_one_process(tmp_path):
    import json

    from robust_ssl.evaluation.evaluator import AdversarialEvaluator
    from robust_ssl.finetune import FineTuner

    write_image_folder(tmp_path / "data/cifar10", {"train": 8, "test": 5})  # 15 test images
    data_dir = str(tmp_path / "data")
    model = FineTuner(stem="imagenet", freeze="full")
    trainer = pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, limit_val_batches=0,
                         enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=str(tmp_path))
    trainer.fit(model, LabeledDataModule(data_dir=data_dir, batch_size=8))
    trainer.save_checkpoint(tmp_path / "classifier.ckpt")
    results = {}
    for name, make_trainer in (("one", lambda: pl.Trainer(accelerator="cpu", logger=False,
                                                          enable_progress_bar=False)),
                               ("two", ddp_trainer)):
        evaluator = AdversarialEvaluator(str(tmp_path / "classifier.ckpt"),
                                         str(tmp_path / f"{name}.json"), attacks=("fgsm",),
                                         large_eps=None)
        make_trainer().test(evaluator, LabeledDataModule(data_dir=data_dir, eval_batch_size=4))
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    expected = {"test": 15, "sweep_subset": 15}  # the ε sweep defaults to every image
    assert results["two"]["examples"] == results["one"]["examples"] == expected
    assert results["two"]["metrics"] == results["one"]["metrics"]
    assert results["two"]["subsets"] == results["one"]["subsets"]
