"""Clean and adversarial accuracy of a fine-tuned classifier, written to one JSON per run.

Used with `trainer.test(AdversarialEvaluator(...), datamodule)`. Beyond the paper's FGSM it runs
PGD-20 and (on a subset) AutoAttack, and records the sanity checks a careful reader of
robustness numbers asks for (Carlini et al. 2019): attacks must not beat clean accuracy, PGD
must not do worse than FGSM, accuracy must collapse at a large ε, and a random-noise control at
the same ε must hurt less than the attack. Failed checks are stored and warned about.
"""

from __future__ import annotations

import inspect
import json
import platform
import subprocess
import time
import warnings
from importlib import metadata
from pathlib import Path

import pytorch_lightning as pl
import torch
from torchmetrics.aggregation import SumMetric
from torchmetrics.classification import MulticlassAccuracy

from robust_ssl.attacks import autoattack, check_epsilon, fgsm, pgd, random_sign_noise
from robust_ssl.errors import RobustSSLError
from robust_ssl.finetune import FineTuner
from robust_ssl.rundir import write_atomically

ATTACKS = ("fgsm", "pgd", "noise")
PACKAGES = ("torch", "torchvision", "pytorch-lightning", "torchmetrics", "kornia", "pyautoattack",
            "robust-ssl")


def eps_name(eps: float) -> str:
    """8/255 -> '8/255': budgets read as they are usually written."""
    return f"{round(eps * 255, 2):g}/255"


class AdversarialEvaluator(pl.LightningModule):
    """Accuracy on the test split: clean, and under each attack at each ε.

    attacks: any of "fgsm", "pgd" (`pgd_steps` steps of `pgd_alpha`, random start) and "noise"
    (random ±ε signs, the control). `large_eps` adds PGD at that budget, where a model that is
    not masking gradients falls to near zero; it takes `large_eps_steps` steps of 2.5·ε/steps
    (Madry et al.'s rule), since a step of 2/255 would not cross a ball that large. `autoattack_examples` > 0 runs standard AutoAttack
    on that many test images (the first ones of a fixed permutation) at each ε.
    """

    def __init__(
        self,
        checkpoint: str,
        output: str,
        epsilons: tuple[float, ...] = (8 / 255,),
        attacks: tuple[str, ...] = ("fgsm", "pgd", "noise"),
        pgd_steps: int = 20,
        pgd_alpha: float = 2 / 255,
        large_eps: float | None = 64 / 255,
        large_eps_steps: int = 10,
        autoattack_examples: int = 0,
        seed: int = 0,
        run_name: str | None = None,
    ):
        super().__init__()
        unknown = sorted(set(attacks) - set(ATTACKS))
        if unknown:
            raise RobustSSLError(f"unknown attack {unknown[0]!r}: choose from {', '.join(ATTACKS)}")
        for eps in list(epsilons) + ([large_eps] if large_eps is not None else []):
            check_epsilon(eps)
        if not Path(checkpoint).is_file():
            raise RobustSSLError(f"classifier checkpoint '{checkpoint}' does not exist: run the "
                                 "fine-tuning that writes it, or fix the path")
        self.save_hyperparameters()
        self.settings = [("clean", 0.0)] + [(a, e) for e in epsilons for a in attacks]
        if large_eps is not None:
            self.settings.append(("pgd", large_eps))
        self.classifier: FineTuner | None = None
        self._start = 0.0

    def setup(self, stage: str) -> None:
        """Load the classifier here, not in __init__: a LightningModule built while the CLI
        instantiates another one would record the outer module's hyperparameters. The metrics
        are made here too, in each process: under ddp_spawn, states made in __init__ would be
        one shared-memory tensor that every rank adds to."""
        if self.classifier is not None:
            return
        self.classifier = load_classifier(self.hparams.checkpoint)
        self.classifier.eval()
        num_classes = self.classifier.hparams.num_classes
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        data_classes = getattr(datamodule, "num_classes", None)
        if data_classes is not None and data_classes != num_classes:
            raise RobustSSLError(
                f"classifier '{self.hparams.checkpoint}' predicts {num_classes} classes but the "
                f"data '{datamodule.hparams.dataset}' has {data_classes}: evaluate it on the "
                "dataset it was fine-tuned on")
        self.examples = SumMetric()
        self.accuracy = torch.nn.ModuleDict({
            self.key(a, e): MulticlassAccuracy(num_classes, average="micro")
            for a, e in self.settings
        })

    @staticmethod
    def key(attack: str, eps: float) -> str:
        return "clean" if attack == "clean" else f"{attack}@{eps_name(eps)}"

    def train(self, mode: bool = True):
        """The classifier is evaluated in eval mode whatever Lightning asks."""
        super().train(mode)
        if self.classifier is not None:
            self.classifier.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def on_test_start(self) -> None:
        self._start = time.perf_counter()
        torch.manual_seed(self.hparams.seed)  # the random starts and the noise control

    def perturb(self, attack: str, eps: float, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if attack == "clean":
            return x
        if attack == "fgsm":
            return fgsm(self.classifier, x, y, eps)
        if attack == "pgd":
            hp = self.hparams
            if eps in hp.epsilons:
                return pgd(self.classifier, x, y, eps, hp.pgd_alpha, hp.pgd_steps)
            return pgd(self.classifier, x, y, eps, 2.5 * eps / hp.large_eps_steps,
                       hp.large_eps_steps)
        return random_sign_noise(x, eps)

    def test_step(self, batch, batch_idx: int) -> None:
        # Lightning tests under inference mode; attacks need autograd, on a normal copy.
        with torch.inference_mode(False):
            x, y = batch[0].clone(), batch[1].clone()
            self.examples.update(len(y))
            for attack, eps in self.settings:
                adversarial = self.perturb(attack, eps, x, y)
                with torch.no_grad():
                    self.accuracy[self.key(attack, eps)].update(self(adversarial), y)

    def on_test_epoch_end(self) -> None:
        """Accuracies and counts gathered over all ranks (each rank saw its own shard of the
        test set); AutoAttack, which runs on a fixed subset, runs once, on rank zero."""
        metrics = {name: metric.compute().item() for name, metric in self.accuracy.items()}
        counts = {"test": int(self.examples.compute().item())}
        if not self.trainer.is_global_zero:
            return
        if self.hparams.autoattack_examples > 0:
            aa_metrics, counts["autoattack"] = self._autoattack()
            metrics.update(aa_metrics)
        for name, value in metrics.items():
            self.log(f"test/{name}", value, rank_zero_only=True)
        self.write_results(metrics, counts)

    def _autoattack(self) -> tuple[dict[str, float], int]:
        test = self.trainer.datamodule.test
        order = torch.randperm(len(test), generator=torch.Generator().manual_seed(self.hparams.seed))
        index = order[: self.hparams.autoattack_examples]
        x = test.images[index].float().div(255).to(self.device)
        y = test.labels[index].to(self.device)
        metrics = {}
        with torch.inference_mode(False):
            with torch.no_grad():
                metrics["clean@autoattack_subset"] = (self(x).argmax(1) == y).float().mean().item()
            for eps in self.hparams.epsilons:
                adversarial = autoattack(self.classifier, x, y, eps, seed=self.hparams.seed)
                with torch.no_grad():
                    correct = (self(adversarial).argmax(1) == y).float().mean().item()
                metrics[f"autoattack@{eps_name(eps)}"] = correct
        return metrics, len(index)

    def write_results(self, metrics: dict[str, float], counts: dict[str, int]) -> None:
        sanity = sanity_checks(metrics, self.hparams.epsilons, self.hparams.large_eps)
        for message in sanity["warnings"]:
            warnings.warn(f"sanity check: {message}", stacklevel=2)
        datamodule = self.trainer.datamodule
        result = {
            "run": self.hparams.run_name or Path(self.hparams.output).stem,
            "seed": self.hparams.seed,
            "metrics": metrics,
            "examples": counts,
            "sanity": sanity,
            "config": {
                "evaluator": dict(self.hparams),
                "classifier": dict(self.classifier.hparams),
                "data": dict(getattr(datamodule, "hparams", {})),
            },
            "wall_time_s": round(time.perf_counter() - self._start, 2),
            "device": str(self.device),
            "versions": versions(),
            "git_commit": git_commit(),
        }
        path = Path(self.hparams.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(result, indent=2, default=str) + "\n")


def load_classifier(checkpoint: str) -> FineTuner:
    """A FineTuner from its Lightning checkpoint (weights only; the encoder file is not reread).

    Anything else (an empty or damaged file, a pretraining checkpoint, a pickled object, a
    classifier of another architecture) is one RobustSSLError that says what the file is.
    """
    path = Path(checkpoint)
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # EOF, unpickling, zip errors: all mean "not a checkpoint"
        raise RobustSSLError(
            f"cannot read classifier checkpoint '{path}' ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'empty or damaged'}): give the "
            "classifier.ckpt that fine-tuning wrote") from None
    hparams = entry.get("hyper_parameters", {}) if isinstance(entry, dict) else {}
    state = entry.get("state_dict", {}) if isinstance(entry, dict) else {}
    if not hparams.get("num_classes") or "classifier.weight" not in state:
        kind = ("a pretraining checkpoint" if any(k.startswith("tasks.") for k in state)
                else "not a Lightning checkpoint" if not state else "another model's checkpoint")
        raise RobustSSLError(f"'{path}' is not a FineTuner checkpoint ({kind}): give the "
                             "classifier.ckpt that fine-tuning wrote")
    try:
        accepted = inspect.signature(FineTuner.__init__).parameters
        model = FineTuner(**{k: v for k, v in hparams.items() if k in accepted
                             and k != "encoder_path"})
        model.load_state_dict(state)
    except (RobustSSLError, RuntimeError, TypeError, ValueError) as error:
        raise RobustSSLError(f"'{path}' is not a FineTuner checkpoint of this architecture "
                             f"({str(error).splitlines()[0]})") from None
    return model


def sanity_checks(metrics: dict[str, float], epsilons: tuple[float, ...],
                  large_eps: float | None) -> dict:
    """Flags for numbers that suggest a broken attack or gradient masking."""
    clean = metrics["clean"]
    found: list[str] = []
    attacked = {k: v for k, v in metrics.items() if "@" in k and not k.startswith("noise")
                and not k.startswith("clean")}
    above_clean = sorted(k for k, v in attacked.items() if v > clean)
    if above_clean:
        found.append(f"attacked accuracy above clean ({clean:.4f}) for {', '.join(above_clean)}")
    for eps in epsilons:
        name = eps_name(eps)
        fgsm_acc, pgd_acc = metrics.get(f"fgsm@{name}"), metrics.get(f"pgd@{name}")
        noise_acc = metrics.get(f"noise@{name}")
        if fgsm_acc is not None and pgd_acc is not None and pgd_acc > fgsm_acc:
            found.append(f"PGD accuracy {pgd_acc:.4f} above FGSM {fgsm_acc:.4f} at {name}: "
                         "possible gradient masking")
        if fgsm_acc is not None and noise_acc is not None and noise_acc < fgsm_acc:
            found.append(f"random noise ({noise_acc:.4f}) hurts more than FGSM ({fgsm_acc:.4f}) "
                         f"at {name}: the attack is not working")
    large = metrics.get(f"pgd@{eps_name(large_eps)}") if large_eps is not None else None
    if large is not None and large > 0.05:
        found.append(f"accuracy {large:.4f} under PGD at {eps_name(large_eps)} is not near zero: "
                     "possible gradient masking")
    return {"passed": not found, "warnings": found}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def git_commit() -> str | None:
    try:
        # the commit, suffixed -dirty when results came from uncommitted code
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40",
                              "--exclude=*"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
