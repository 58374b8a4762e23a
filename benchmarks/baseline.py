"""The supervised baseline against a standard CIFAR recipe at the same budget: the suite's
supervised cell (run.py with the profile's YAML: Table 1's first row, trained without
adversarial examples) and a plain PyTorch loop written the way the well-known CIFAR recipes
write it, trained on the same images for the same epochs and read out on the same test images.

Usage: python benchmarks/baseline.py [--profile quick] [--seeds 0 1 2] [--data-dir data]
       [--test-images 10000] [--device cpu] [--json FILE]

The reference arm (torchvision's classification reference and kuangliu/pytorch-cifar, as
airbench's baseline describes them): torchvision's resnet18 (its 7×7/2 stem and max-pool under
the imagenet stem; the 3×3/1 conv without max-pool under the cifar stem), torchvision
transforms RandomCrop(32, padding=4) with zero padding and RandomHorizontalFlip, per-channel
normalisation as the first layer, SGD with plain momentum 0.9, cosine annealing per step, no
label smoothing. It takes the profile's epochs, batch size, learning rate and weight decay,
and the datamodule's training split (the validation hold-out removed), so only the
implementation differs: the suite's kornia crop with reflect padding, Nesterov momentum,
the feature BatchNorm before the linear layer, the zero-initialised head, Lightning's loop.
Readout of both: clean and FGSM (8/255, pixel) accuracy on the same test images. Seeds pair
the arms; the difference is the mean and 95% t-interval over seeds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning import interval, limited, mean_and_spread, write_json  # noqa: E402

from robust_ssl.attacks import fgsm  # noqa: E402
from robust_ssl.data.modules import LabeledDataModule  # noqa: E402
from robust_ssl.data.sources import load_split  # noqa: E402
from robust_ssl.evaluation.classifier import load_classifier  # noqa: E402
from robust_ssl.models.backbone import CIFAR10_MEAN, CIFAR10_STD, Normalize  # noqa: E402
from robust_ssl.runs import configs  # noqa: E402

EPS = 8 / 255
ARMS = ("suite", "reference")


def settings(profile: str) -> dict:
    """What both arms share, from the profile's supervised YAML."""
    config = configs.load(profile, "supervised")
    model, data = config["model"]["init_args"], config["data"]["init_args"]
    return {"epochs": config["trainer"]["max_epochs"],
            "limit_train_batches": config["trainer"].get("limit_train_batches"),
            "batch": data["batch_size"], "lr": model["lr"],
            "weight_decay": model["weight_decay"], "stem": model["stem"], "data": data}


def training_split(shared: dict, data_dir: str):
    """The datamodule's own training split: the images the suite's cell trains on."""
    module = LabeledDataModule(**{**shared["data"], "data_dir": data_dir})
    module.setup("fit")
    return module.train


def reference_network(stem: str, classes: int) -> nn.Module:
    from torchvision.models import resnet18
    net = resnet18(weights=None, num_classes=classes)
    if stem != "imagenet":
        net.conv1 = nn.Conv2d(3, 64, 3, stride=1 if stem == "cifar" else 2, padding=1,
                              bias=False)
        net.maxpool = nn.Identity()
    return nn.Sequential(Normalize(CIFAR10_MEAN, CIFAR10_STD), net)


class Augmented(torch.utils.data.Dataset):
    """uint8 images through torchvision's standard CIFAR training transforms, as floats."""

    def __init__(self, split):
        from torchvision.transforms import v2
        self.split = split
        self.transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(),
                                     v2.ToDtype(torch.float32, scale=True)])

    def __len__(self):
        return len(self.split.labels)

    def __getitem__(self, i):
        return self.transform(self.split.images[i]), self.split.labels[i]


def train_reference(split, shared: dict, seed: int, device: str) -> tuple[nn.Module, list]:
    torch.manual_seed(seed)
    model = reference_network(shared["stem"], len(split.classes)).to(device)
    loader = torch.utils.data.DataLoader(Augmented(split), batch_size=shared["batch"],
                                         shuffle=True,
                                         generator=torch.Generator().manual_seed(seed))
    per_epoch = len(loader) if shared["limit_train_batches"] is None else \
        min(len(loader), int(shared["limit_train_batches"]))
    steps = shared["epochs"] * per_epoch
    optimizer = torch.optim.SGD(model.parameters(), lr=shared["lr"], momentum=0.9,
                                weight_decay=shared["weight_decay"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    model.train()
    losses = []
    for _ in range(shared["epochs"]):
        for step, (images, labels) in enumerate(loader):
            if step == per_epoch:
                break
            loss = F.cross_entropy(model(images.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
    return model.eval(), losses


def train_suite(profile: str, seed: int, data_dir: str, run_dir: Path) -> nn.Module:
    """The suite's supervised cell, as the grid runs it (W&B off)."""
    command = [sys.executable, "-m", "robust_ssl.runs.run", "supervised", "--profile", profile,
               "--run-dir", str(run_dir), "--data-dir", data_dir, "--seed", str(seed),
               "--wandb", "off"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return load_classifier(str(run_dir / "classifier.ckpt")).eval()


def accuracies(model: nn.Module, test, device: str, batch: int = 500) -> dict:
    """Clean and FGSM (8/255) accuracy, %."""
    model.to(device).eval()
    right = {"clean": 0, "fgsm": 0}
    for start in range(0, len(test.labels), batch):
        x = test.images[start:start + batch].to(device).float() / 255
        y = test.labels[start:start + batch].to(device)
        with torch.no_grad():
            right["clean"] += (model(x).argmax(1) == y).sum().item()
        adversarial = fgsm(model, x, y, EPS)
        with torch.no_grad():
            right["fgsm"] += (model(adversarial).argmax(1) == y).sum().item()
    return {k: 100 * v / len(test.labels) for k, v in right.items()}


def run_arm(arm: str, profile: str, seed: int, data_dir: str, split, test, device: str,
            work: Path) -> dict:
    start = time.perf_counter()
    shared = settings(profile)
    extra = {}
    if arm == "suite":
        model = train_suite(profile, seed, data_dir, work / f"suite-s{seed}")
    else:
        model, losses = train_reference(split, shared, seed, device)
        steps = max(1, len(losses) // shared["epochs"])
        extra = {"first_epoch_loss": sum(losses[:steps]) / steps,
                 "last_epoch_loss": sum(losses[-steps:]) / steps}
    minutes = (time.perf_counter() - start) / 60
    return accuracies(model, test, device) | extra | {"minutes": minutes}


def summary(runs: dict) -> str:
    lines = []
    for arm, found in runs.items():
        cells = [mean_and_spread(metric, found) for metric in ("clean", "fgsm")]
        minutes = sum(r["minutes"] for r in found) / len(found)
        lines.append(f"  {arm:22s} {'   '.join(cells)}   {minutes:.1f} min")
    if all(arm in runs for arm in ARMS):
        cells = []
        for metric in ("clean", "fgsm"):
            mean, low, high = interval([r[metric] - s[metric] for r, s in
                                        zip(runs["reference"], runs["suite"])])
            cells.append(f"{metric} {mean:+5.1f} [{low:+.1f}, {high:+.1f}]")
        lines.append(f"  {'reference − suite':22s} {'   '.join(cells)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--test-images", type=int, default=10000,
                        help="a stratified subset of the test split (10,000: all of it)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    shared = settings(args.profile)
    split = training_split(shared, args.data_dir)
    test = limited(load_split("cifar10", "test", args.data_dir), args.test_images)
    print(f"{args.profile} supervised baseline: {len(split.labels)} training images, "
          f"{shared['epochs']} epochs of batch {shared['batch']}, lr {shared['lr']}, weight "
          f"decay {shared['weight_decay']}, {shared['stem']} stem; {len(test.labels)} test "
          f"images; {args.device}; seeds {args.seeds}", flush=True)
    runs: dict = {}
    with tempfile.TemporaryDirectory() as work:
        for seed in args.seeds:
            for arm in args.arms:
                run = run_arm(arm, args.profile, seed, args.data_dir, split, test,
                              args.device, Path(work))
                runs.setdefault(arm, []).append(run)
                print(f"seed {seed} {arm:10s} clean {run['clean']:5.1f}  FGSM "
                      f"{run['fgsm']:5.1f}  {run['minutes']:.1f} min", flush=True)
    print(summary(runs))
    write_json(args, runs)


if __name__ == "__main__":
    main()
