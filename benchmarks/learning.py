"""Learning quality against the reference implementation: each pretext that lightly also
implements, trained here and by lightly's CIFAR-10 recipe on the same images, backbone,
initialisation, optimiser, batch size and steps, and read out the same way.

Usage: python benchmarks/learning.py [--methods simclr byol barlow_twins moco] [--seeds 0 1 2]
       [--epochs 4] [--images 5000] [--test-images 2000] [--batch 128] [--optimizer adam|sgd]
       [--stem imagenet] [--device cpu] [--data-dir data] [--json FILE]

Three arms per method and seed, all starting from the same encoder weights:
- suite: the suite's task as the quick Table 2 trains it (its YAML's settings; the paper's
  views: jitter strength 0.5, 3×3 blur half of the time);
- suite+ref views: the same task fed lightly's views, so that only the augmentation differs;
- reference: lightly's transform, heads and loss as its CIFAR-10 benchmark configures them
  (docs/source/getting_started/benchmarks/cifar10_benchmark.py: SimCLRTransform at 32 px with
  the blur off; SimCLR's BatchNorm projector, BYOL's 1024/256 heads at momentum 0.99, Barlow
  Twins' two-layer 2048 projector, MoCo's NT-Xent at τ 0.1 with a 4096-key bank, batch shuffle
  and the symmetric loss), with lightly 1.6's modules.
The optimiser is the one named (adam: the quick profile's AdamW 1e-3 decaying to 10%; sgd:
lightly's benchmark, 0.06·batch/128, momentum 0.9, cosine), weight decay 5e-4, on every arm.
Readout: kNN (k 200, cosine, τ 0.1; bank = the training images unaugmented, queries = the test
images) and a linear probe (multinomial logistic regression by L-BFGS on standardised frozen
features, L2 1e-4). The differences are paired by seed: mean and 95% t-interval over seeds.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from robust_ssl.data.sources import load_split
from robust_ssl.data.subsets import stratified_limit
from robust_ssl.models.backbone import Encoder
from robust_ssl.models.features import encode
from robust_ssl.pretrain import BarlowTwinsTask, BYOLTask, MoCoTask, Pretrainer, SimCLRTask
from robust_ssl.pretrain.knn import knn_predict
from robust_ssl.runs import configs

METHODS = ("simclr", "byol", "barlow_twins", "moco")
ARMS = ("suite", "suite+ref views", "reference")
SUITE_TASKS = {"simclr": SimCLRTask, "byol": BYOLTask, "barlow_twins": BarlowTwinsTask,
               "moco": MoCoTask}


class ReferenceViews(nn.Module):
    """lightly's CIFAR-10 views: SimCLRTransform(input_size=32, gaussian_blur=0) image by image
    (PIL), left in [0, 1] for the encoder's own normalisation."""

    def __init__(self):
        super().__init__()
        from lightly.transforms import SimCLRTransform
        from torchvision.transforms.functional import to_pil_image
        self.transform = SimCLRTransform(input_size=32, gaussian_blur=0.0, normalize=None)
        self.to_pil = to_pil_image

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self.transform(self.to_pil(image)) for image in images.cpu()]
        return tuple(torch.stack(views).to(images.device) for views in zip(*pairs))


class Reference(nn.Module):
    """lightly's recipe of one method around a given encoder: `loss(images)` and
    `after_step()`, the momentum update lightly runs at the start of its next step."""

    def __init__(self, method: str, encoder: Encoder):
        super().__init__()
        from lightly.loss import BarlowTwinsLoss, NegativeCosineSimilarity, NTXentLoss
        from lightly.models.modules import heads
        self.method, self.encoder, self.views = method, encoder, ReferenceViews()
        width = encoder.feature_dim
        if method == "simclr":
            self.projection = heads.SimCLRProjectionHead(width, 512, 128)
            self.criterion = NTXentLoss()
        elif method == "byol":
            self.projection = heads.BYOLProjectionHead(width, 1024, 256)
            self.prediction = heads.BYOLPredictionHead(256, 1024, 256)
            self.criterion = NegativeCosineSimilarity()
        elif method == "barlow_twins":
            self.projection = heads.ProjectionHead([
                (width, 2048, nn.BatchNorm1d(2048), nn.ReLU(inplace=True)),
                (2048, 2048, None, None)])
            self.criterion = BarlowTwinsLoss()
        elif method == "moco":
            self.projection = heads.MoCoProjectionHead(width, 512, 128)
            self.criterion = NTXentLoss(temperature=0.1, memory_bank_size=(4096, 128))
        else:
            raise ValueError(f"no reference recipe for {method!r}: choose from {METHODS}")
        if method in ("byol", "moco"):
            self.momentum = nn.Sequential(copy.deepcopy(encoder), copy.deepcopy(self.projection))
            self.momentum.requires_grad_(False)

    def after_step(self, step: int, total_steps: int) -> None:
        if hasattr(self, "momentum"):
            from lightly.models.utils import update_momentum
            update_momentum(nn.Sequential(self.encoder, self.projection), self.momentum, m=0.99)

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        a, b = self.views(images)
        if self.method in ("simclr", "barlow_twins"):
            z_a, z_b = (self.projection(self.encoder(v)) for v in (a, b))
            return self.criterion(z_a, z_b)
        if self.method == "byol":
            p_a, p_b = (self.prediction(self.projection(self.encoder(v))) for v in (a, b))
            with torch.no_grad():
                z_a, z_b = self.momentum(a), self.momentum(b)
            return 0.5 * (self.criterion(p_a, z_b) + self.criterion(p_b, z_a))
        return 0.5 * (self.moco_loss(a, b) + self.moco_loss(b, a))

    def moco_loss(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        from lightly.models.utils import batch_shuffle, batch_unshuffle
        q = self.projection(self.encoder(query))
        with torch.no_grad():
            shuffled, order = batch_shuffle(key)
            k = batch_unshuffle(self.momentum(shuffled), order)
        return self.criterion(q, k)


class Suite(nn.Module):
    """The suite's pretrainer with one task, stepped by hand as Lightning steps it."""

    def __init__(self, pretrainer: Pretrainer):
        super().__init__()
        self.pretrainer, self.encoder = pretrainer, pretrainer.encoder

    def loss(self, images: torch.Tensor) -> torch.Tensor:
        return self.pretrainer.loss(images)

    def after_step(self, step: int, total_steps: int) -> None:
        self.pretrainer.move_momentum_networks(step, total_steps)


def suite_task_arguments(method: str, profile: str) -> dict:
    """The task's init_args as the profile's YAML sets them (Table 2's settings)."""
    tasks = configs.load(profile, method)["model"]["init_args"]["tasks"]
    return dict(tasks[0].get("init_args") or {})


def build_arm(method: str, arm: str, seed: int, stem: str, profile: str) -> nn.Module:
    """One arm; the encoder is drawn first after seeding, so every arm starts from the same
    weights (checked by the caller)."""
    if arm == "reference":
        torch.manual_seed(seed)
        return Reference(method, Encoder("resnet18", stem))
    views = ReferenceViews() if arm == "suite+ref views" else None
    task = SUITE_TASKS[method](**suite_task_arguments(method, profile), views=views)
    torch.manual_seed(seed)
    return Suite(Pretrainer([task], backbone="resnet18", stem=stem, channels_last=False))


def optimizer_and_schedule(model: nn.Module, kind: str, batch: int, steps: int):
    params = [p for p in model.parameters() if p.requires_grad]
    if kind == "adam":
        optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=5e-4)
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.1 ** (1 / steps))
    elif kind == "sgd":
        optimizer = torch.optim.SGD(params, lr=0.06 * batch / 128, momentum=0.9,
                                    weight_decay=5e-4)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    else:
        raise ValueError(f"unknown optimizer {kind!r}: choose adam or sgd")
    return optimizer, schedule


def train(model: nn.Module, images: torch.Tensor, epochs: int, batch: int, optimizer_kind: str,
          seed: int, device: str) -> list[float]:
    """Plain training loop; the batches' order depends on the seed alone (the same for every
    arm), the last incomplete batch dropped. Returns the loss of each step."""
    steps_per_epoch = len(images) // batch
    if steps_per_epoch == 0:
        raise ValueError(f"{len(images)} images make no batch of {batch}: lower --batch")
    total = epochs * steps_per_epoch
    model.to(device).train()
    optimizer, schedule = optimizer_and_schedule(model, optimizer_kind, batch, total)
    order = torch.Generator().manual_seed(seed)
    losses, step = [], 0
    for _ in range(epochs):
        permutation = torch.randperm(len(images), generator=order)
        for start in range(0, steps_per_epoch * batch, batch):
            loss = model.loss(images[permutation[start:start + batch]].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            model.after_step(step, total)
            losses.append(loss.item())
            step += 1
    return losses


def linear_probe(train_x, train_y, test_x, test_y, iterations: int = 200,
                 l2: float = 1e-4) -> float:
    """Test accuracy of a logistic regression on standardised features (full-batch L-BFGS:
    deterministic, no learning rate to tune)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    layer = nn.Linear(train_x.shape[1], int(train_y.max()) + 1).to(train_x.device)
    optimizer = torch.optim.LBFGS(layer.parameters(), lr=1, max_iter=iterations,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(layer(train_x), train_y) + l2 * layer.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return (layer(test_x).argmax(1) == test_y).float().mean().item()


def read_out(encoder: nn.Module, train_images, train_labels, test_images, test_labels) -> dict:
    """kNN and linear-probe accuracy (%) of the encoder's eval-mode features."""
    bank, queries = encode(encoder, train_images, normalize=False), \
        encode(encoder, test_images, normalize=False)
    device = bank.device
    train_labels, test_labels = train_labels.to(device), test_labels.to(device)
    classes = int(max(train_labels.max(), test_labels.max())) + 1
    predicted = knn_predict(F.normalize(bank, dim=1), train_labels, F.normalize(queries, dim=1),
                            classes, k=200, temperature=0.1)
    knn = (predicted == test_labels).float().mean().item()
    probe = linear_probe(bank, train_labels, queries, test_labels)
    return {"knn": 100 * knn, "probe": 100 * probe}


def run_arm(method: str, arm: str, seed: int, train_split, test_split, epochs: int, batch: int,
            optimizer: str, stem: str, device: str, profile: str = "quick") -> dict:
    """Train one arm and read it out: accuracies, the losses of the first and last epoch's
    steps, the minutes taken and the initial weights' checksum."""
    model = build_arm(method, arm, seed, stem, profile)
    first_conv = next(model.encoder.parameters())
    start = time.perf_counter()
    initial = first_conv.detach().double().sum().item()
    losses = train(model, train_split.images, epochs, batch, optimizer, seed, device)
    result = read_out(model.encoder, train_split.images, train_split.labels, test_split.images,
                      test_split.labels)
    per_epoch = len(losses) // epochs
    return result | {"first_epoch_loss": sum(losses[:per_epoch]) / per_epoch,
                     "last_epoch_loss": sum(losses[-per_epoch:]) / per_epoch,
                     "initial_weights": initial,
                     "minutes": (time.perf_counter() - start) / 60}


def interval(differences: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval of paired differences (NaN bounds for one seed)."""
    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return mean, math.nan, math.nan
    from scipy.stats import t
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    half = t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def mean_and_spread(metric: str, runs: list[dict]) -> str:
    """`metric mean ± std` over the runs (std NaN for one run)."""
    values = torch.tensor([r[metric] for r in runs])
    spread = values.std().item() if len(values) > 1 else math.nan
    return f"{metric} {values.mean():5.1f} ± {spread:4.1f}"


def summary(results: dict) -> str:
    """One block per method: each arm's mean ± std, then each arm against the suite."""
    lines = []
    for method, arms in results.items():
        lines.append(f"{method}")
        for arm, runs in arms.items():
            cells = [mean_and_spread(metric, runs) for metric in ("knn", "probe")]
            minutes = sum(r["minutes"] for r in runs) / len(runs)
            loss = " → ".join(f"{sum(r[k] for r in runs) / len(runs):.3f}"
                              for k in ("first_epoch_loss", "last_epoch_loss"))
            lines.append(f"  {arm:16s} {'   '.join(cells)}   loss {loss}   {minutes:.1f} min")
        for arm in ARMS[1:]:
            if arm not in arms or "suite" not in arms:
                continue
            cells = []
            for metric in ("knn", "probe"):
                mean, low, high = interval([o[metric] - s[metric]
                                            for o, s in zip(arms[arm], arms["suite"])])
                cells.append(f"{metric} {mean:+5.1f} [{low:+.1f}, {high:+.1f}]")
            lines.append(f"  {arm + ' − suite':28s} {'   '.join(cells)}")
    return "\n".join(lines)


def limited(split, limit: int):
    """A stratified subset of `limit` images of a split."""
    keep = stratified_limit(split.labels, limit)
    return dataclasses.replace(split, images=split.images[keep], labels=split.labels[keep])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--images", type=int, default=5000,
                        help="training images (stratified; also the kNN bank and probe set)")
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--optimizer", default="adam", choices=("adam", "sgd"))
    parser.add_argument("--stem", default="imagenet", choices=("cifar", "strided", "imagenet"))
    parser.add_argument("--profile", default="quick", help="whose YAML sets the suite's tasks")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    train_split, test_split = (limited(load_split("cifar10", split, args.data_dir), limit)
                               for split, limit in (("train", args.images),
                                                    ("test", args.test_images)))
    print(f"CIFAR-10 from {args.data_dir}: {len(train_split)} training images, "
          f"{len(test_split)} test images; {args.epochs} epochs of batch {args.batch} "
          f"({args.epochs * (len(train_split) // args.batch)} steps), {args.optimizer}, "
          f"ResNet-18 with the {args.stem} stem, {args.device}, seeds {args.seeds}", flush=True)
    results: dict = {}
    for method in args.methods:
        for seed in args.seeds:
            initial = None
            for arm in args.arms:
                run = run_arm(method, arm, seed, train_split, test_split, args.epochs,
                              args.batch, args.optimizer, args.stem, args.device, args.profile)
                initial = run["initial_weights"] if initial is None else initial
                if not math.isclose(initial, run["initial_weights"]):
                    raise RuntimeError(f"{method} seed {seed}: the {arm} arm started from "
                                       "other weights than the first arm")
                results.setdefault(method, {}).setdefault(arm, []).append(run)
                print(f"{method:12s} seed {seed} {arm:16s} kNN {run['knn']:5.1f}  probe "
                      f"{run['probe']:5.1f}  loss {run['first_epoch_loss']:.3f} → "
                      f"{run['last_epoch_loss']:.3f}  {run['minutes']:.1f} min", flush=True)
    print(summary(results))
    write_json(args, results)


def write_json(args: argparse.Namespace, results: dict) -> None:
    """Every run's figures and the settings they ran under, to `--json` where given."""
    if args.json:
        args.json.write_text(json.dumps({"settings": vars(args) | {"json": str(args.json)},
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
