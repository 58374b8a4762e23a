"""Time budget of a profile: throughput of every kind of step it uses, and the projected minutes
of each Table 1 cell and of the whole table, of the pretraining-budget curve (`make curve`, the
profile's default budgets), of what Table 3 adds to Table 1 (`make table3`), of the
pretraining of Table 2's rows beyond the paper (BYOL, Barlow Twins, MoCo v2: views/s beside
SimCLR's, their momentum updates included) and of the RobustSSL protocol (`make robustssl`:
SLF, ALF and AFF of each encoder, their evaluations with AutoAttack and the 75 corrupted test
sets, the corruptions' generation), for one seed (SEEDS="0 1 2" takes three times it).

Usage: python benchmarks/budget.py --profile paper|quick [--device cpu|cuda] [--steps 5]
       [--batch N] [--devices N ...] [--autoattack N] [--backbone B [--stem S]]
       [--encoders N] [--json FILE]

Each kind is timed over `--steps` steps after one warm-up step (the median step counts; the
fastest and slowest step give the spread), with the profile's own stem and precision, and
batches of at most `--batch` images: on a CPU 32 by default (the profile's batches of 256 or
512 made one run of this script take over 20 minutes on 2 cores), on a GPU the profile's own
(`--batch 0` asks for them anywhere). A small batch's rate per image, scaled to the run's
images, is a quick estimate; on a GPU small batches use it less well, so the projection errs
long (bf16 autocast where the profile asks for it
and the device is a GPU; channels_last weights, as the Pretrainer uses them). Beside each
training kind stands its bare model step: the same network and optimiser on ready-made float
inputs, no augmentation, no attack, channels_last, so the ratio says what the data pipeline and
the attack cost. The projection multiplies the measured rates by the profile's epochs and
CIFAR's sizes (50,000 pretraining images, 45,000 labeled after the 10% validation split, 10,000
test images); process start-up and data loading are not in it. AutoAttack is timed on N images
only when asked (minutes per image on a CPU). `--backbone` (and `--stem`) time every kind with
another encoder than the profile's (resnet50, wrn28_10, wrn34_10; the WideResNets need
`--stem cifar`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from robust_ssl.plumbing.steps import Steps

from robust_ssl.runs import grid
from robust_ssl.attacks import PGD, TRADES, autoattack, fgsm, pgd, random_sign_noise
from robust_ssl.data import corruption_ops
from robust_ssl.data.augment import CropFlip
from robust_ssl.finetune import FineTuner
from robust_ssl.models.backbone import BACKBONES, STEMS
from robust_ssl.models.features import encode
from robust_ssl.pretrain import AdversarialSimCLRTask, Pretrainer, SimCLRTask
from robust_ssl.runs.configs import apply_overrides, resolve_class
from robust_ssl.runs.run import base_config

PRETRAIN_IMAGES, LABELED_POOL, VALIDATION, TEST = 50_000, 45_000, 5_000, 10_000
FRACTIONS = {"1%": 0.01, "10%": 0.1, "30%": 0.3, "100%": 1.0}
EPS = 8 / 255


def settings(profile: str) -> dict:
    """What the projection needs from the profile's YAMLs."""
    def init(stage, section):
        return base_config(profile, stage)[section].get("init_args", {})

    def trainer(stage):
        return base_config(profile, stage)["trainer"]

    def pretext(task):
        config = base_config(profile, "pretrain", task)
        model = config["model"]["init_args"]
        return dict(stem=model.get("stem", "cifar"),
                    batch=config["data"]["init_args"].get("batch_size", 256),
                    fraction=config["data"]["init_args"].get("fraction", 1.0),
                    epochs=config["trainer"]["max_epochs"], tasks=model["tasks"])

    evaluate = init("evaluate", "model")
    robustssl = robustssl_settings(profile)
    adversarial = base_config(profile, "pretrain", "adv_simclr")
    adversarial_model = adversarial["model"]["init_args"]
    aff = dict(override.split("=") for override in grid.AFF_BUDGET.get(profile, ()))
    return {
        "adv_simclr": dict(stem=adversarial_model.get("stem", "cifar"),
                           batch=adversarial["data"]["init_args"].get("batch_size", 256),
                           fraction=adversarial["data"]["init_args"].get("fraction", 1.0),
                           epochs=adversarial["trainer"]["max_epochs"],
                           dual=adversarial_model.get("dual_batchnorm", False),
                           task=adversarial_model["tasks"][0].get("init_args", {})),
        "backbone": init("pretrain", "model").get("backbone", "resnet18"),
        "pretext": {task: pretext(task) for task in grid.BEYOND_PAPER_TASKS},
        "aff": dict(steps=int(aff.get("model.attack.steps", 10)),
                    epochs=int(aff.get("trainer.max_epochs", trainer("finetune")["max_epochs"]))),
        "bf16": trainer("pretrain").get("precision") == "bf16-mixed",
        "simclr": dict(stem=init("pretrain", "model").get("stem", "cifar"),
                       batch=init("pretrain", "data").get("batch_size", 256),
                       fraction=init("pretrain", "data").get("fraction", 1.0),
                       epochs=trainer("pretrain")["max_epochs"]),
        "finetune": dict(stem=init("finetune", "model").get("stem", "cifar"),
                         batch=init("finetune", "data").get("batch_size", 128),
                         epochs=trainer("finetune")["max_epochs"],
                         val_every=trainer("finetune").get("check_val_every_n_epoch", 1),
                         val_batches=trainer("finetune").get("limit_val_batches"),
                         eval_batch=init("finetune", "data").get("eval_batch_size", 512)),
        "robustssl": robustssl,
        "supervised": dict(epochs=trainer("supervised")["max_epochs"],
                           val_every=trainer("supervised").get("check_val_every_n_epoch", 1),
                           val_batches=trainer("supervised").get("limit_val_batches")),
        "evaluate": dict(test=round(TEST * init("evaluate", "data").get("test_fraction", 1.0)),
                         pgd_steps=evaluate.get("pgd_steps", 20),
                         large_steps=evaluate.get("large_eps_steps", 10),
                         autoattack=evaluate.get("autoattack_examples", 0),
                         # the ε sweep's other budgets, each FGSM + PGD, on its subset
                         sweep_budgets=len([e for e in evaluate.get("sweep_epsilons", [])
                                            if abs(e - EPS) > 1e-9]),
                         sweep_examples=evaluate.get("sweep_examples"),
                         batch=init("evaluate", "data").get("eval_batch_size", 512)),
    }


def robustssl_settings(profile: str) -> dict:
    """Per policy of the RobustSSL protocol (grid.robustssl's layers and cuts): epochs, batch,
    attack steps and validation; and its evaluation (test images, AutoAttack, corruptions)."""
    policies = {}
    for policy in grid.ROBUSTSSL_POLICIES:
        config = base_config(profile, "finetune", layers=(f"robustssl/{policy.lower()}",))
        apply_overrides(config, list(grid.ROBUSTSSL_BUDGET.get(profile, {}).get(policy, ())))
        model, data, trainer = (config["model"]["init_args"], config["data"]["init_args"],
                                config["trainer"])
        policies[policy] = dict(epochs=trainer["max_epochs"], batch=data["batch_size"],
                                steps=model["attack"]["init_args"].get("steps", 1),
                                val_every=trainer.get("check_val_every_n_epoch", 1),
                                val_batches=trainer.get("limit_val_batches"),
                                train=round(50_000 * (1 - data.get("val_fraction", 0.1))))
    evaluate = base_config(profile, "evaluate", layers=("robustssl/evaluate",))
    model = evaluate["model"]["init_args"]
    test = round(TEST * evaluate["data"]["init_args"].get("test_fraction", 1.0))
    autoattack = model.get("autoattack_examples", 0)
    corruptions = model.get("corruptions", "none")
    sets = (len(corruption_ops.CORRUPTIONS) if corruptions == "all" else
            0 if corruptions == "none" else len(corruptions)) * len(corruption_ops.SEVERITIES)
    return {"policies": policies, "test": test,
            "autoattack": test if autoattack is None else min(autoattack, test),
            "pgd_steps": model.get("pgd_steps", 20), "corrupted_sets": sets}


class Timer:
    def __init__(self, device: str, steps: int, bf16: bool):
        self.device, self.steps, self.bf16 = device, steps, bf16 and device == "cuda"
        self.spread: list[tuple[float, float]] = []

    def seconds_per_step(self, step) -> float:
        """Median over the timed steps: this shared 2-core machine swings by +-15% from one
        step to the next, and a median keeps one slow step out of the ratios. The fastest and
        slowest steps are kept in `spread` (their ratio to the median)."""
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
            step()  # warm-up
            self.sync()
            times = []
            for _ in range(self.steps):
                start = time.perf_counter()
                step()
                self.sync()
                times.append(time.perf_counter() - start)
        median = statistics.median(times)
        self.spread.append((min(times) / median, max(times) / median))
        return median

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()


def prepared(module: torch.nn.Module, device: str) -> torch.nn.Module:
    return module.to(device).to(memory_format=torch.channels_last)


def train_step(loss_fn, parameters, after=lambda: None):
    """One optimiser step of `loss_fn`; `after` runs once the step is taken (momentum updates)."""
    optimizer = torch.optim.SGD([p for p in parameters if p.requires_grad], lr=0.01,
                                momentum=0.9, foreach=True)

    def step():
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        after()
    return step


class Rates(dict):
    """The rates measured so far; entering one is a step of the progress line."""

    def __init__(self, steps: Steps):
        super().__init__()
        self.steps = steps

    def __setitem__(self, kind: str, rate: float) -> None:
        super().__setitem__(kind, rate)
        self.steps.step(kind)


def measure(config: dict, timer: Timer, device: str, autoattack_images: int) -> dict:
    """Items per second of each kind (views for SimCLR and Table 2's rows beyond the paper,
    images otherwise)."""
    # 23 kinds, one per other pretext task, AutoAttack where asked
    kinds = 23 + len(config["pretext"]) + bool(autoattack_images)
    rates = Rates(Steps(kinds, "timing"))
    s = config["simclr"]
    backbone = config["backbone"]
    simclr = prepared(Pretrainer([SimCLRTask()], backbone=backbone, stem=s["stem"]), device)
    uint8 = torch.randint(0, 256, (s["batch"], 3, 32, 32), dtype=torch.uint8, device=device)
    views = torch.rand(2 * s["batch"], 3, 32, 32, device=device)
    views = views.contiguous(memory_format=torch.channels_last)
    task = simclr.tasks[0]
    rates["simclr"] = 2 * s["batch"] / timer.seconds_per_step(
        train_step(lambda: simclr.loss(uint8), simclr.parameters()))
    rates["simclr, bare"] = 2 * s["batch"] / timer.seconds_per_step(train_step(
        lambda: task.projection(simclr.encoder(views)).float().pow(2).mean(),
        simclr.parameters()))

    for name, p in config["pretext"].items():  # Table 2's rows beyond the paper
        tasks = [resolve_class(t["class_path"])(**t.get("init_args", {})) for t in p["tasks"]]
        model = prepared(Pretrainer(tasks, backbone=backbone, stem=p["stem"]), device)
        batch = torch.randint(0, 256, (p["batch"], 3, 32, 32), dtype=torch.uint8, device=device)
        hooks = [t for t in model.tasks if hasattr(t, "after_optimizer_step")]
        rates[name] = 2 * p["batch"] / timer.seconds_per_step(train_step(
            lambda model=model, batch=batch: model.loss(batch), model.parameters(),
            after=lambda model=model, hooks=hooks: [t.after_optimizer_step(model.encoder, 1, 100)
                                                    for t in hooks]))

    a = config["adv_simclr"]
    adversarial = prepared(Pretrainer([AdversarialSimCLRTask(**a["task"])], backbone=backbone,
                                      stem=a["stem"], dual_batchnorm=a["dual"]), device)
    uint8 = torch.randint(0, 256, (a["batch"], 3, 32, 32), dtype=torch.uint8, device=device)
    rates["adversarial SimCLR"] = 2 * a["batch"] / timer.seconds_per_step(
        train_step(lambda: adversarial.loss(uint8), adversarial.parameters()))

    f = config["finetune"]
    images = torch.randint(0, 256, (f["batch"], 3, 32, 32), dtype=torch.uint8, device=device)
    ready = images.float().div(255).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (f["batch"],), device=device)
    crop_flip = CropFlip().to(device)
    steps = config["aff"]["steps"]
    aff = {"adv_weight": 1.0, "attack": PGD(8 / 255, steps=steps)}
    trades = {"trades_beta": 6.0, "attack": TRADES(8 / 255, steps=steps)}
    for name, freeze, adversarial, options in (
            ("supervised, clean", "full", False, {}), ("supervised, FGSM", "full", True, {}),
            ("probe, FGSM", "linear", True, {}),
            (f"AFF, PGD-{steps}", "full", True, aff),
            (f"AFF-TRADES, TRADES-{steps}", "full", True, trades)):
        model = prepared(FineTuner(backbone=backbone, stem=f["stem"], num_classes=10,
                                   freeze=freeze, adversarial=adversarial, **options), device)
        model.log = lambda *args, **kwargs: None
        trainable = [p for p in model.parameters() if p.requires_grad]
        augment = name.startswith("supervised")  # fine-tuning trains without augmentation
        rates[name] = f["batch"] / timer.seconds_per_step(train_step(
            lambda: model.training_step(
                ((crop_flip(images) if augment else images.float().div(255)), labels), 0),
            trainable))
        rates[f"{name}, bare"] = f["batch"] / timer.seconds_per_step(train_step(
            lambda: F.cross_entropy(model(ready), labels), trainable))

    protocol = config["robustssl"]["policies"]
    for policy, options in (
            ("SLF", dict(freeze="linear", adversarial=False)),
            ("ALF", dict(freeze="linear", adversarial=True, adv_weight=1.0, attack_in_eval_mode=True,
                         attack=PGD(8 / 255, steps=protocol["ALF"]["steps"]))),
            ("AFF", dict(freeze="full", adversarial=True, trades_beta=6.0, attack_in_eval_mode=True,
                         attack=TRADES(8 / 255, steps=protocol["AFF"]["steps"])))):
        batch = min(protocol[policy]["batch"], config["max_batch"] or protocol[policy]["batch"])
        images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8, device=device)
        labels = torch.randint(0, 10, (batch,), device=device)
        model = prepared(FineTuner(backbone=backbone, stem=f["stem"], num_classes=10,
                                   standardize_features=False, **options), device)
        model.log = lambda *args, **kwargs: None
        trainable = [p for p in model.parameters() if p.requires_grad]
        rates[f"RobustSSL {policy}"] = batch / timer.seconds_per_step(train_step(
            lambda: model.training_step((crop_flip(images), labels), 0), trainable))

    e = config["evaluate"]
    classifier = prepared(FineTuner(backbone=backbone, stem=f["stem"], num_classes=10,
                                    freeze="full"), device).eval()
    x = torch.rand(e["batch"], 3, 32, 32, device=device)
    y = torch.randint(0, 10, (e["batch"],), device=device)
    timer_fp32 = Timer(device, timer.steps, bf16=False)  # attacks that define numbers: fp32
    rates["encode (cached probe)"] = e["batch"] / timer.seconds_per_step(
        lambda: encode(classifier.encoder, x, batch_size=e["batch"], normalize=False))

    def evaluation_batch(pgd_steps):
        def batch():
            for adversarial in (x, fgsm(classifier, x, y, EPS),
                                pgd(classifier, x, y, EPS, 2 / 255, pgd_steps),
                                random_sign_noise(x, EPS),
                                pgd(classifier, x, y, 8 * EPS, 2.5 * 8 * EPS / e["large_steps"],
                                    e["large_steps"])):
                with torch.no_grad():
                    classifier(adversarial)
        return batch
    rates["evaluation (clean, FGSM, PGD, noise, PGD@64)"] = (
        e["batch"] / timer_fp32.seconds_per_step(evaluation_batch(e["pgd_steps"])))
    # the RobustSSL protocol's evaluation at ε: its PGD-20 (smoke's two steps elsewhere)
    protocol_steps = config["robustssl"]["pgd_steps"]
    rates["RobustSSL evaluation (clean, FGSM, PGD-20, noise, PGD@64)"] = (
        rates["evaluation (clean, FGSM, PGD, noise, PGD@64)"] if protocol_steps == e["pgd_steps"]
        else e["batch"] / timer_fp32.seconds_per_step(evaluation_batch(protocol_steps)))

    def sweep_batch():  # one budget of the ε sweep
        for adversarial in (fgsm(classifier, x, y, EPS / 2),
                            pgd(classifier, x, y, EPS / 2, EPS / 8, e["pgd_steps"])):
            with torch.no_grad():
                classifier(adversarial)
    rates["ε sweep, one budget (FGSM, PGD)"] = e["batch"] / timer_fp32.seconds_per_step(
        sweep_batch)

    def clean_batch():
        with torch.no_grad():
            classifier(x)
    rates["clean inference (a corrupted set)"] = e["batch"] / timer_fp32.seconds_per_step(
        clean_batch)
    few = (x[:64] * 255).to(torch.uint8).cpu()
    start = time.perf_counter()
    for name in corruption_ops.CORRUPTIONS:
        frost = ([torch.rand(3, 200, 200) for _ in range(corruption_ops.FROST_FILES)]
                 if name == "frost" else None)
        for severity in corruption_ops.SEVERITIES:
            corruption_ops.corrupt(few, name, severity, frost_images=frost)
    rates["corruptions generated (image × 75 sets)"] = len(few) / (time.perf_counter() - start)

    def validation_batch():
        adversarial = fgsm(classifier, x, y, EPS)
        with torch.no_grad():
            classifier(x), classifier(adversarial)
    rates["validation (clean, FGSM)"] = e["batch"] / timer_fp32.seconds_per_step(validation_batch)
    if autoattack_images:
        few = x[:autoattack_images], y[:autoattack_images]
        once = Timer(device, 1, bf16=False)
        rates["autoattack"] = autoattack_images / once.seconds_per_step(
            lambda: autoattack(classifier, *few, EPS))
    return dict(rates)


def evaluation_seconds(e: dict, rates: dict, sweep: bool = True) -> float:
    """One evaluation run: the attacks at ε on the test images, the ε sweep on its subset (the
    tables; the curve has none), AutoAttack on its subset when the profile runs it."""
    seconds = e["test"] / rates["evaluation (clean, FGSM, PGD, noise, PGD@64)"]
    if sweep:
        swept = min(e["test"], e["sweep_examples"] or e["test"])
        seconds += e["sweep_budgets"] * swept / rates["ε sweep, one budget (FGSM, PGD)"]
    if e["autoattack"]:
        seconds += e["autoattack"] / rates.get("autoattack", float("nan"))
    return seconds


def validation_seconds(f: dict, rates: dict, batches: int | None, times: int = 1) -> float:
    """`times` validations (clean + FGSM) on `batches` batches, or on all of it (None)."""
    images = VALIDATION if batches is None else min(VALIDATION, batches * f["eval_batch"])
    return times * images / rates["validation (clean, FGSM)"]


def project(config: dict, rates: dict) -> dict[str, float]:
    """Minutes of each Table 1 cell (training + validation + evaluation) and of the table."""
    f, sup = config["finetune"], config["supervised"]

    def validation(epochs, every, batches):
        return validation_seconds(f, rates, batches, epochs // every)

    evaluation = evaluation_seconds(config["evaluate"], rates)
    s = config["simclr"]
    steps = int(PRETRAIN_IMAGES * s["fraction"]) // s["batch"]
    seconds = {"pretraining": s["epochs"] * steps * 2 * s["batch"] / rates["simclr"]}
    probe_val = validation(f["epochs"], f["val_every"], f["val_batches"])
    for label, fraction in {**FRACTIONS, "random encoder 100%": 1.0}.items():
        images = round(LABELED_POOL * fraction)
        seconds[f"{label}, clean"] = (images / rates["encode (cached probe)"] + probe_val
                                      + evaluation)
        seconds[f"{label}, FGSM"] = (f["epochs"] * images / rates["probe, FGSM"] + probe_val
                                     + evaluation)
    sup_val = validation(sup["epochs"], sup["val_every"], sup["val_batches"])
    for label, kind in (("supervised, clean", "supervised, clean"),
                        ("supervised, FGSM", "supervised, FGSM")):
        seconds[label] = sup["epochs"] * LABELED_POOL / rates[kind] + sup_val + evaluation
    minutes = {cell: value / 60 for cell, value in seconds.items()}
    minutes["Table 1"] = sum(minutes.values())
    return minutes


def cell_minutes(cell: grid.Cell, minutes: dict[str, float]) -> float:
    """A Table 1 cell's projected minutes (project's keys)."""
    if cell.stage == "pretrain":
        return minutes["pretraining"]
    training = "clean" if "model.adversarial=false" in cell.overrides else "FGSM"
    if cell.stage == "supervised":
        return minutes[f"supervised, {training}"]
    label = "random encoder 100%" if cell.row == "random encoder" else cell.row
    return minutes[f"{label}, {training}"]


def makespan(cells: list[grid.Cell], minutes: dict[str, float], devices: int) -> float:
    """Wall minutes of `cells` on `devices` devices as the local executor runs them: in the
    table's order, each as soon as a device is free and the cells it needs are done."""
    free = [0.0] * devices
    done: dict[str, float] = {}
    for cell in cells:
        ready = max([done[name] for name in grid.needs(cell)], default=0.0)
        device = min(range(devices), key=lambda d: max(free[d], ready))
        start = max(free[device], ready)
        done[cell.name] = free[device] = start + cell_minutes(cell, minutes)
    return max(done.values())


def project_curve(config: dict, rates: dict, epochs: tuple[int, ...],
                  supervised_epochs: tuple[int, ...]) -> dict[str, float]:
    """Minutes of the budget curve (grid.curve): SimCLR on every image up to the last budget,
    the two 100% probes of each export, the supervised runs of each budget; evaluations
    without the ε sweep."""
    f, sup, s = config["finetune"], config["supervised"], config["simclr"]
    evaluation = evaluation_seconds(config["evaluate"], rates, sweep=False)
    # once each, after the last epoch (the curve's runs validate there)
    probe_val = validation_seconds(f, rates, f["val_batches"])
    sup_val = validation_seconds(f, rates, sup["val_batches"])
    steps = PRETRAIN_IMAGES // s["batch"]
    seconds = {
        "pretraining": max(epochs) * steps * 2 * s["batch"] / rates["simclr"],
        "probes": len(epochs) * (LABELED_POOL / rates["encode (cached probe)"]
                                 + f["epochs"] * LABELED_POOL / rates["probe, FGSM"]
                                 + 2 * (probe_val + evaluation)),
        "supervised": sum(supervised_epochs) * LABELED_POOL * (1 / rates["supervised, clean"]
                                                             + 1 / rates["supervised, FGSM"])
                      + len(supervised_epochs) * 2 * (sup_val + evaluation)}
    minutes = {part: value / 60 for part, value in seconds.items()}
    minutes["curve"] = sum(minutes.values())
    return minutes


def project_table3(config: dict, rates: dict) -> dict[str, float]:
    """Minutes that Table 3 adds to Table 1 (grid.table3): adversarial SimCLR pretraining, its
    SLF probe, and ALF, AFF and AFF-TRADES of both encoders (SimCLR's encoder and SLF are
    Table 1's)."""
    f, a, aff = config["finetune"], config["adv_simclr"], config["aff"]
    evaluation = evaluation_seconds(config["evaluate"], rates)
    validation = validation_seconds(f, rates, f["val_batches"])
    steps = int(PRETRAIN_IMAGES * a["fraction"]) // a["batch"]
    seconds = {
        "adversarial pretraining": a["epochs"] * steps * 2 * a["batch"]
                                   / rates["adversarial SimCLR"],
        "SLF (adversarial encoder)": LABELED_POOL / rates["encode (cached probe)"] + validation
                                     + evaluation,
        "ALF, two encoders": 2 * (f["epochs"] * LABELED_POOL / rates["probe, FGSM"]
                                  + validation + evaluation),
        "AFF, two encoders": 2 * (aff["epochs"] * LABELED_POOL
                                  / rates[f"AFF, PGD-{aff['steps']}"] + validation + evaluation),
        "AFF-TRADES, two encoders": 2 * (aff["epochs"] * LABELED_POOL
                                         / rates[f"AFF-TRADES, TRADES-{aff['steps']}"]
                                         + validation + evaluation)}
    minutes = {part: value / 60 for part, value in seconds.items()}
    minutes["Table 3 beyond Table 1"] = sum(minutes.values())
    return minutes


def project_robustssl(config: dict, rates: dict, encoders: int) -> dict[str, float]:
    """Minutes of `make robustssl` for `encoders` encoders already pretrained (Table 1's and
    Table 3's pretraining, or imported files), all at the profile's fine-tuning stem: each
    encoder's SLF, ALF and AFF with their validations, and each of those classifiers'
    evaluation (attacks at ε, AutoAttack, the corrupted sets); the corruptions' generation
    once (cached)."""
    r = config["robustssl"]
    f = config["finetune"]
    evaluation = (r["test"] / rates["RobustSSL evaluation (clean, FGSM, PGD-20, noise, PGD@64)"]
                  + r["corrupted_sets"] * r["test"] / rates["clean inference (a corrupted set)"])
    if r["autoattack"]:
        evaluation += r["autoattack"] / rates.get("autoattack", float("nan"))
    seconds = {}
    for policy, p in r["policies"].items():
        validation = validation_seconds(f, rates, p["val_batches"], p["epochs"] // p["val_every"])
        seconds[f"{policy}, per encoder"] = (p["epochs"] * p["train"] / rates[f"RobustSSL {policy}"]
                                             + validation + evaluation)
    per_encoder = sum(seconds.values())
    seconds[f"{encoders} encoder(s)"] = encoders * per_encoder
    seconds["corruptions, generated once"] = (
        r["test"] * r["corrupted_sets"] / len(corruption_ops.SEVERITIES) / len(corruption_ops.CORRUPTIONS)
        / rates["corruptions generated (image × 75 sets)"])
    minutes = {part: value / 60 for part, value in seconds.items()}
    minutes["RobustSSL table"] = (minutes[f"{encoders} encoder(s)"]
                                  + minutes["corruptions, generated once"])
    return minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["paper", "quick"], required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, metavar="N",
                        help="time batches of at most N images (default: 32 on a CPU, the "
                        "profile's on a GPU; 0: the profile's)")
    parser.add_argument("--encoders", type=int, default=2,
                        help="encoders of the projected RobustSSL table (default 2: SimCLR and "
                        "adversarial SimCLR)")
    parser.add_argument("--devices", type=int, nargs="*", default=[],
                        help="also project Table 1's wall time on each number of devices")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds of the projected Table 1 (default: the profile's)")
    parser.add_argument("--autoattack", type=int, default=0, metavar="N",
                        help="time AutoAttack on N images (needed for the paper projection)")
    parser.add_argument("--backbone", choices=BACKBONES,
                        help="time every kind with this encoder (default: the profile's)")
    parser.add_argument("--stem", choices=STEMS, help="with this stem (default: the profile's)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    config = settings(args.profile)
    config["backbone"] = args.backbone or config["backbone"]
    if args.stem:
        for kind in (config["simclr"], config["adv_simclr"], config["finetune"],
                     *config["pretext"].values()):
            kind["stem"] = args.stem
    if args.batch is None and args.device == "cpu":
        args.batch = 32
    config["max_batch"] = args.batch or None
    if args.batch:
        for kind in ("simclr", "adv_simclr", "finetune", "evaluate"):
            config[kind]["batch"] = min(config[kind]["batch"], args.batch)
        for pretext in config["pretext"].values():
            pretext["batch"] = min(pretext["batch"], args.batch)
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"profile={args.profile} backbone={config['backbone']} device={args.device} ({name}) "
          f"steps={args.steps} batch={'the profile' + chr(39) + 's' if not args.batch else f'<= {args.batch}'} "
          f"bf16={config['bf16'] and args.device == 'cuda'} threads={torch.get_num_threads()}")
    if config["evaluate"]["autoattack"] and not args.autoattack:
        args.autoattack = 1  # the profile runs it: time it on one image at least
        print("the profile runs AutoAttack: timing it on 1 image (--autoattack N for more)")
    timer = Timer(args.device, args.steps, config["bf16"])
    rates = measure(config, timer, args.device, args.autoattack)
    for kind, rate in rates.items():
        bare = rates.get(f"{kind}, bare")
        ratio = f"  ({rate / bare:.0%} of its bare model step)" if bare else ""
        if not kind.endswith(", bare"):
            print(f"{kind:46s} {rate:10,.0f} /s{ratio}")
    minutes = project(config, rates)
    fast = min(low for low, _ in timer.spread)
    slow = max(high for _, high in timer.spread)
    print("projected minutes (training + validation + evaluation; start-up and loading not "
          f"included; steps ran {fast:.2f}x to {slow:.2f}x their kind's median):")
    for cell, value in minutes.items():
        print(f"  {cell:28s} {value:8.1f}")
    seeds = args.seeds or len(grid.DEFAULT_SEEDS[args.profile])
    cells = grid.cells_of("table1", "cifar100", tuple(range(seeds)))
    walls = {n: makespan(cells, minutes, n) for n in args.devices}
    for devices, wall in walls.items():
        print(f"Table 1, {seeds} seed(s), on {devices} device(s) at once (JOBS={devices}): "
              f"{wall:.0f} min wall ({wall / 60:.1f} h); one after another "
              f"{makespan(cells, minutes, 1):.0f} min")
    budgets = grid.CURVE_EPOCHS[args.profile], grid.SUPERVISED_EPOCHS[args.profile]
    curve = project_curve(config, rates, *budgets)
    print(f"projected minutes of the curve (SimCLR epochs {budgets[0]}, supervised {budgets[1]}):")
    for part, value in curve.items():
        print(f"  {part:28s} {value:8.1f}")
    print("projected pretraining minutes of Table 2's rows beyond the paper (views/s above):")
    for name, p in config["pretext"].items():
        views = p["epochs"] * int(PRETRAIN_IMAGES * p["fraction"]) // p["batch"] * 2 * p["batch"]
        print(f"  {name:28s} {views / rates[name] / 60:8.1f}  "
              f"({rates['simclr'] / rates[name]:.2f}x the time of a SimCLR step)")
    print(f"adversarial SimCLR: {rates['simclr'] / rates['adversarial SimCLR']:.1f}x the "
          f"time of a SimCLR step ({config['adv_simclr']['task'].get('steps', 5)} attack steps)")
    table3 = project_table3(config, rates)
    print("projected minutes of Table 3 beyond Table 1:")
    for part, value in table3.items():
        print(f"  {part:28s} {value:8.1f}")
    robustssl = project_robustssl(config, rates, args.encoders)
    r = config["robustssl"]
    print(f"projected minutes of the RobustSSL table ({args.encoders} encoders pretrained; "
          f"{r['test']} test images, AutoAttack on {r['autoattack']}, {r['corrupted_sets']} "
          "corrupted sets):")
    for part, value in robustssl.items():
        print(f"  {part:28s} {value:8.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"profile": args.profile, "device": name, "rates_per_s": rates,
                       "projected_minutes": minutes, "projected_curve_minutes": curve,
                       "projected_table3_minutes": table3,
                       "projected_robustssl_minutes": robustssl,
                       "table1_wall_minutes_on_devices": walls}, f, indent=2)


if __name__ == "__main__":
    main()
