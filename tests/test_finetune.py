import copy
import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from robust_ssl.attacks import FGSM, PGD, TRADES, fgsm, kl_divergence
from robust_ssl.data.modules import LabeledDataModule
from robust_ssl.errors import RobustSSLError
from robust_ssl.finetune import FineTuner
from robust_ssl.finetune.finetuner import trades_loss
from robust_ssl.models.backbone import Encoder
from robust_ssl.models.export import CheckpointError, save_encoder


def fit(model, data, **kwargs):
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         max_epochs=kwargs.pop("max_epochs", 1), **kwargs)
    trainer.fit(model, data)
    return trainer


@pytest.fixture
def encoder_file(tmp_path):
    torch.manual_seed(0)
    encoder = Encoder(stem="imagenet")
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after pretraining
        for module in encoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return save_encoder(encoder, tmp_path / "encoder.pt")


def trainable(model):
    return {name.split(".")[0] if not name.startswith("encoder.net.") else name.split(".")[2]
            for name, p in model.named_parameters() if p.requires_grad}


def test_freezing_policies_choose_the_trainable_parts():
    assert trainable(FineTuner(stem="imagenet", num_classes=10, freeze="linear")) == {
        "classifier"}
    assert trainable(FineTuner(stem="imagenet", num_classes=10, freeze="partial",
                               frozen_stages=2)) == {"layer3", "layer4", "classifier"}
    full = trainable(FineTuner(stem="imagenet", num_classes=10, freeze="full"))
    assert {"conv1", "bn1", "layer1", "layer4", "classifier"} <= full


def test_a_wide_resnets_partial_fine_tuning_freezes_its_stem_and_first_two_groups():
    tuner = FineTuner(backbone="wrn28_10", num_classes=10, freeze="partial", frozen_stages=2)
    assert trainable(tuner) == {"block3", "bn", "classifier"}
    assert tuner.classifier.in_features == 640
    with pytest.raises(RobustSSLError, match="frozen_stages=4 is outside 0..3"):
        FineTuner(backbone="wrn28_10", frozen_stages=4)


def test_frozen_encoder_is_bit_identical_after_adversarial_linear_fine_tuning(
        image_folder, encoder_file):
    data_dir, _ = image_folder
    model = FineTuner(str(encoder_file), stem="imagenet", num_classes=3, adversarial=True,
                      adv_weight=1.0)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    classifier_before = model.classifier.weight.clone()
    fit(model, LabeledDataModule(data_dir=str(data_dir), batch_size=8, val_fraction=0.2),
        max_epochs=2)
    after = model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "encoder changed"
    assert not torch.equal(classifier_before, model.classifier.weight)


def test_partial_fine_tuning_keeps_frozen_stages_and_updates_the_rest(image_folder, encoder_file):
    data_dir, _ = image_folder
    model = FineTuner(str(encoder_file), stem="imagenet", num_classes=3, freeze="partial",
                      frozen_stages=1, adversarial=True)
    frozen_before = {k: v.clone() for k, v in model.encoder.net.layer1.state_dict().items()}
    layer4_before = model.encoder.net.layer4[0].conv1.weight.clone()
    fit(model, LabeledDataModule(data_dir=str(data_dir), batch_size=8, val_fraction=0.0))
    assert all(torch.equal(v, model.encoder.net.layer1.state_dict()[k])
               for k, v in frozen_before.items())
    assert not torch.equal(layer4_before, model.encoder.net.layer4[0].conv1.weight)


def test_cached_features_train_the_same_probe_as_reencoding(image_folder, encoder_file):
    data_dir, _ = image_folder
    weights = {}
    for cache in (True, False):
        pl.seed_everything(3)
        data = LabeledDataModule(data_dir=str(data_dir), batch_size=8, val_fraction=0.0,
                                 augment=False)
        model = FineTuner(str(encoder_file), stem="imagenet", num_classes=3, lr=0.05,
                          cache_features=cache)
        fit(model, data, max_epochs=2)
        assert data.train_is_features == cache
        weights[cache] = model.classifier.weight.detach().clone()
    torch.testing.assert_close(weights[True], weights[False], rtol=1e-4, atol=1e-5)


def test_supervised_baseline_trains_everything_from_random_weights():
    model = FineTuner(encoder_path=None, stem="imagenet", freeze="full", adversarial=True)
    assert all(p.requires_grad for p in model.parameters())
    assert model.frozen == [] and not model.caches_features


def test_adversarial_step_mixes_clean_and_fgsm_losses():
    torch.manual_seed(0)
    x, y = torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    losses = {}
    for weight in (0.0, 1.0, 0.5):
        torch.manual_seed(1)
        model = FineTuner(stem="imagenet", num_classes=10, freeze="linear", adversarial=True,
                          adv_weight=weight)
        model.log = lambda *args, **kwargs: None
        model.eval()  # deterministic forward: the three losses come from the same model
        losses[weight] = model.training_step((x, y), 0).item()
    assert losses[1.0] > losses[0.0]  # FGSM raises the loss
    assert losses[0.5] == pytest.approx((losses[0.0] + losses[1.0]) / 2, rel=1e-5)



def test_training_on_adversarial_examples_alone_keeps_clean_images_out_of_batchnorm():
    """adv_weight=1.0 (ALF, AFF, PGD-AT): the batch of the training forward is the adversarial
    one alone, so BatchNorm in training mode normalises with its statistics only."""
    torch.manual_seed(0)
    x, y = torch.rand(8, 3, 32, 32), torch.arange(8) % 10
    model = FineTuner(stem="imagenet", num_classes=10, freeze="full", adversarial=True,
                      adv_weight=1.0)
    model.log = lambda *args, **kwargs: None
    reference = copy.deepcopy(model)
    loss = model.training_step((x, y), 0)
    expected = F.cross_entropy(reference(fgsm(reference, x, y, 8 / 255)), y)
    torch.testing.assert_close(loss, expected)
    for name, buffer in model.named_buffers():
        torch.testing.assert_close(buffer, dict(reference.named_buffers())[name])

def test_pgd_training_examples_raise_the_loss_more_than_fgsm():
    """attack=PGD(steps=k) trains on PGD-k examples: from the same model, a higher adversarial
    loss than FGSM's, and one step of PGD is not FGSM (it starts at a random point)."""
    x, y = torch.rand(8, 3, 32, 32), torch.arange(8) % 10
    losses = {}
    for name, attack in (("fgsm", FGSM(8 / 255)), ("pgd", PGD(8 / 255, steps=5))):
        torch.manual_seed(1)
        model = FineTuner(stem="imagenet", num_classes=10, freeze="linear", adversarial=True,
                          adv_weight=1.0, attack=attack)
        model.log = lambda *args, **kwargs: None
        model.eval()
        losses[name] = model.training_step((x, y), 0).item()
    assert losses["pgd"] > losses["fgsm"]


def test_trades_loss_on_a_hand_computed_case():
    """p_clean = (1/4, 3/4), p_adv = (1/2, 1/2), label 1: CE = -ln 3/4 and
    KL(p_clean ‖ p_adv) = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.13081."""
    clean = torch.tensor([[0.0, math.log(3.0)]], requires_grad=True)
    adversarial = torch.tensor([[0.0, 0.0]], requires_grad=True)
    loss, kl = trades_loss(clean, adversarial, torch.tensor([1]), beta=6.0)
    expected_kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert kl.item() == pytest.approx(expected_kl, rel=1e-6)
    assert loss.item() == pytest.approx(-math.log(0.75) + 6.0 * expected_kl, rel=1e-6)
    loss.backward()  # through both predictions, as TRADES's reference code does
    assert clean.grad.abs().sum() > 0 and adversarial.grad.abs().sum() > 0


def test_trades_step_is_clean_cross_entropy_plus_beta_kl_of_its_adversary():
    torch.manual_seed(0)
    x, y = torch.rand(6, 3, 32, 32), torch.arange(6) % 10
    losses = {}
    for beta in (0.0, 6.0):
        torch.manual_seed(1)
        model = FineTuner(stem="imagenet", num_classes=10, freeze="linear", adversarial=True,
                          trades_beta=beta, attack=TRADES(8 / 255, steps=3))
        model.log = lambda *args, **kwargs: None
        model.eval()
        torch.manual_seed(2)
        losses[beta] = model.training_step((x, y), 0).item()
        with torch.no_grad():
            clean = F.cross_entropy(model(x), y).item()
    assert losses[0.0] == pytest.approx(clean, rel=1e-5)  # β = 0: the clean loss alone
    assert losses[6.0] > losses[0.0]  # the adversary found a KL > 0


def test_encoder_of_another_stem_is_refused(encoder_file):
    with pytest.raises(CheckpointError, match="holds .*'imagenet'.*model is .*'cifar'"):
        FineTuner(str(encoder_file), stem="cifar")


@pytest.mark.parametrize("kwargs,match", [
    ({"adv_weight": 1.5}, "adv_weight=1.5"),
    ({"freeze": "some"}, "unknown freeze 'some'"),
    ({"frozen_stages": 7}, "frozen_stages=7"),
    ({"attack": "pgd"}, "attack='pgd' is not an attack"),
    ({"trades_beta": -1.0}, "trades_beta=-1.0 is negative"),
])
def test_impossible_settings_are_clear_errors(kwargs, match):
    with pytest.raises(RobustSSLError, match=match):
        FineTuner(stem="imagenet", **kwargs)


@pytest.mark.parametrize("make, match", [(lambda: FGSM(8), "eps=8 is outside"),
                                         (lambda: PGD(8 / 255, steps=0), "steps=0")])
def test_impossible_training_attacks_are_clear_errors(make, match):
    with pytest.raises(RobustSSLError, match=match):
        make()


def test_the_training_attack_is_recorded_as_a_config_says_it():
    """Checkpoints load weights_only: the attack is kept as plain values, not as an object."""
    model = FineTuner(stem="imagenet", num_classes=10, attack=PGD(4 / 255, steps=3))
    assert model.hparams["attack"] == {"class_path": "robust_ssl.attacks.PGD", "init_args": {
        "eps": 4 / 255, "steps": 3, "step_ratio": 0.25, "random_start": True,
        "eps_space": "pixel"}}
    assert model.validation_attacks["fgsm"].eps == 4 / 255
    assert FineTuner(stem="imagenet").training_attack.description()["init_args"] == {
        "eps": 8 / 255, "random_start": False, "alpha": None, "eps_space": "pixel"}


def test_standardised_probe_reads_features_of_any_scale_alike():
    """One learning rate must suit encoders whose features differ in scale and offset."""
    torch.manual_seed(0)
    features = torch.randn(64, 512)
    standardised = FineTuner(stem="imagenet", num_classes=10)
    raw = FineTuner(stem="imagenet", num_classes=10, standardize_features=False)
    torch.testing.assert_close(standardised.predict(features),
                               standardised.predict(300 * features + 7), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(raw.predict(features), raw.predict(300 * features + 7))


def test_validation_history_records_pgd_accuracy_and_travels_in_the_checkpoint(image_folder,
                                                                               tmp_path):
    """One entry per validation (clean, FGSM, PGD-10 on the first images), kept in the
    checkpoint, where the evaluator reads it to look for catastrophic overfitting."""
    from robust_ssl.evaluation.classifier import load_classifier

    data_dir, _ = image_folder
    model = FineTuner(stem="imagenet", freeze="full", adversarial=True, val_pgd_examples=4)
    trainer = fit(model, LabeledDataModule(data_dir=str(data_dir), batch_size=16,
                                           val_fraction=0.2), max_epochs=2)
    assert [h["epoch"] for h in model.validation_history] == [0, 1]
    assert all(set(h) == {"epoch", "acc", "fgsm_acc", "pgd_acc"} and 0 <= h["pgd_acc"] <= 1
               for h in model.validation_history)
    trainer.save_checkpoint(tmp_path / "classifier.ckpt")
    loaded = load_classifier(str(tmp_path / "classifier.ckpt"))
    assert loaded.validation_history == model.validation_history


class Recorder:
    """Wraps the training attack: records the model's mode while it attacks."""

    def __init__(self, attack):
        self.inner, self.modes = attack, []

    def __call__(self, model, x, y):
        self.modes.append(model.training)
        return self.inner(model, x, y)


def test_an_attack_in_eval_mode_leaves_batchnorm_to_the_losss_forward():
    """attack_in_eval_mode (TRADES's reference code, the RobustSSL benchmark): the adversary's
    passes use the running statistics and move none of them; the loss's forward is in
    training mode, so the statistics move by its batches alone (TRADES: clean, then
    adversarial, two passes)."""
    torch.manual_seed(0)
    x, y = torch.rand(8, 3, 32, 32), torch.arange(8) % 10
    runs = {}
    for eval_mode in (False, True):
        torch.manual_seed(1)
        model = FineTuner(stem="imagenet", num_classes=10, freeze="full", adversarial=True,
                          trades_beta=6.0, attack=TRADES(8 / 255, steps=2),
                          attack_in_eval_mode=eval_mode)
        model.log = lambda *args, **kwargs: None
        model.training_attack = recorder = Recorder(model.training_attack)
        reference = copy.deepcopy(model)
        torch.manual_seed(2)
        loss = model.training_step((x, y), 0)
        runs[eval_mode] = (recorder.modes, model, reference, loss)
    assert runs[True][0] == [False] and runs[False][0] == [True]
    _, model, reference, loss = runs[True]
    assert model.training  # back in training mode for the loss
    torch.manual_seed(2)
    reference.eval()
    adversarial = reference.training_attack.inner(reference, x, y)
    reference.train()
    clean_logits, adversarial_logits = reference(x), reference(adversarial)  # two passes
    expected, _ = trades_loss(clean_logits, adversarial_logits, y, 6.0)
    torch.testing.assert_close(loss, expected)
    for name, buffer in model.named_buffers():
        torch.testing.assert_close(buffer, dict(reference.named_buffers())[name])


def test_the_step_schedule_decays_at_fractions_of_the_run(image_folder):
    """lr_schedule: step, milestones 0.5 of a 2-epoch run: the second epoch's every step at
    lr × lr_decay, the first's at lr (an epoch-wise MultiStepLR at epoch 1)."""
    data_dir, _ = image_folder
    seen = []

    class Rates(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append((trainer.current_epoch, trainer.optimizers[0].param_groups[0]["lr"]))

    model = FineTuner(stem="imagenet", freeze="linear", lr=0.2, lr_schedule="step",
                      lr_milestones=(0.5,), lr_decay=0.1, nesterov=False)
    fit(model, LabeledDataModule(data_dir=str(data_dir), batch_size=10, val_fraction=0.0),
        max_epochs=2, callbacks=[Rates()])
    assert {lr for epoch, lr in seen if epoch == 0} == {0.2}
    assert {round(lr, 10) for epoch, lr in seen if epoch == 1} == {0.02}
    optimizer = model.configure_optimizers()["optimizer"]
    assert optimizer.param_groups[0]["nesterov"] is False
    with pytest.raises(RobustSSLError, match="lr_milestones=\\[1.5\\]"):
        FineTuner(stem="imagenet", freeze="linear", lr_schedule="step", lr_milestones=(1.5,),
                  num_classes=3).configure_optimizers()


def test_a_zero_head_and_an_augmented_probe_that_reencodes(image_folder):
    """zero_init_head starts the prediction layer at zero (the benchmark's fc); a clean linear
    probe whose datamodule augments cannot train on cached features."""
    data_dir, _ = image_folder
    model = FineTuner(stem="imagenet", freeze="linear", zero_init_head=True,
                      standardize_features=False, num_classes=3)
    assert not model.classifier.weight.any() and not model.classifier.bias.any()
    fit(model, LabeledDataModule(data_dir=str(data_dir), batch_size=16, augment=True,
                                 val_fraction=0.0))
    assert not model.trains_on_features and model.classifier.weight.any()
    cached = FineTuner(stem="imagenet", freeze="linear", num_classes=3)
    fit(cached, LabeledDataModule(data_dir=str(data_dir), batch_size=16, augment=False,
                                  val_fraction=0.0))
    assert cached.trains_on_features


def test_trades_kl_keeps_a_finite_gradient_where_a_probability_underflows():
    """exp(-200) is 0 in fp32: KL with p_clean as probabilities gave log(0) a NaN gradient,
    which spread through every weight of an AFF run; as log-probabilities it stays finite."""
    clean = torch.tensor([[0.0, 200.0]], requires_grad=True)
    adversarial = torch.tensor([[0.0, 0.0]], requires_grad=True)
    kl = kl_divergence(clean, adversarial)
    kl.backward()
    assert kl.item() == pytest.approx(math.log(2), rel=1e-5)  # KL(δ_1 ‖ uniform)
    assert torch.isfinite(clean.grad).all() and torch.isfinite(adversarial.grad).all()


def test_a_diverged_fine_tuning_stops_with_the_way_out(image_folder):
    data_dir, _ = image_folder
    model = FineTuner(stem="imagenet", freeze="full", lr=1e30, num_classes=3)
    with pytest.raises(RobustSSLError, match="training loss is (nan|inf).*diverged.*lower model.lr"):
        fit(model, LabeledDataModule(data_dir=str(data_dir), batch_size=16, val_fraction=0.0))
