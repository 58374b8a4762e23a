import pytorch_lightning as pl
import torch

from robust_ssl.data.modules import UnlabeledDataModule
from robust_ssl.models.backbone import Encoder
from robust_ssl.models.export import load_encoder
from robust_ssl.pretrain import ExportEncoder, KNNMonitor, Pretrainer, SimCLRTask


def trainer(**kwargs):
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, **kwargs)


def test_training_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = Pretrainer([SimCLRTask()], stem="imagenet")
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(12):
        torch.manual_seed(1)  # the same views at every step: the loss must fall on them
        loss = model.loss(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


def test_fit_logs_knn_and_exports_a_loadable_encoder(image_folder, tmp_path):
    data_dir, _ = image_folder
    data = UnlabeledDataModule(dataset="cifar10", data_dir=str(data_dir), batch_size=16)
    monitor = KNNMonitor(dataset="cifar10", every_n_epochs=1, k=5)
    export = ExportEncoder(str(tmp_path / "encoder.pt"))
    model = Pretrainer([SimCLRTask()], stem="imagenet")
    trainer(max_epochs=2, callbacks=[monitor, export]).fit(model, data)
    assert [epoch for epoch, _ in monitor.history] == [0, 1, 2]
    assert all(0 <= accuracy <= 1 for _, accuracy in monitor.history)
    encoder = Encoder(stem="imagenet")
    metadata = load_encoder(encoder, tmp_path / "encoder.pt")
    assert metadata["pretext"] == "simclr" and metadata["global_step"] == 6
    for a, b in zip(encoder.state_dict().values(), model.encoder.state_dict().values()):
        assert torch.equal(a, b.cpu())


def test_learning_rate_decays_exponentially_to_the_final_ratio(image_folder):
    data_dir, _ = image_folder
    data = UnlabeledDataModule(dataset="cifar10", data_dir=str(data_dir), batch_size=16)
    model = Pretrainer([SimCLRTask()], stem="imagenet", lr=0.1, final_lr_ratio=0.01)
    fit = trainer(max_epochs=4)
    fit.fit(model, data)
    lr = fit.optimizers[0].param_groups[0]["lr"]
    torch.testing.assert_close(torch.tensor(lr), torch.tensor(0.001), rtol=1e-4, atol=0)
