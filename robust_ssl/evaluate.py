"""Clean and adversarial accuracy of a fine-tuned classifier, written to one JSON per run.

Used with `trainer.test(AdversarialEvaluator(...), datamodule)`. Beyond the paper's FGSM it runs
PGD-20, an ε sweep and (on a subset) AutoAttack, keeps whether each test image survived each
attack, and from that reports the worst case per image over all attacks at an ε (AutoAttack's
rule: an image counts as robust only if no attack broke it) and compares attacks only on the
images both ran on. It records the sanity checks a careful reader of robustness numbers asks
for (Carlini et al. 2019; sanity_checks below); failed checks are stored, warned about, and
marked in the tables.
"""

from __future__ import annotations

import inspect
import json
import os
import platform
import subprocess
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import pytorch_lightning as pl
import torch

from robust_ssl.attacks import autoattack, check_epsilon, fgsm, pgd, random_sign_noise
from robust_ssl.errors import RobustSSLError
from robust_ssl.finetune import FineTuner
from robust_ssl.rundir import write_atomically

ATTACKS = ("fgsm", "pgd", "noise")
WORST_CASE = ("fgsm", "pgd", "autoattack")  # attacks that count in the worst case (not noise)
PACKAGES = ("torch", "torchvision", "pytorch-lightning", "torchmetrics", "kornia", "pyautoattack",
            "robust-ssl")
# FGSM this far above PGD at the same ε (both more than 5 points apart and twice as high) is
# the signature of a masked gradient or of catastrophic overfitting (Wong et al. 2020)
FGSM_GAP, FGSM_RATIO = 0.05, 2.0
COLLAPSE = 0.05  # accuracy that PGD at the large ε must fall under
# a stronger attack may read this much above a weaker one before it is flagged: PGD's random
# start lands a point or two of 200 images either way at ε = 1-2/255
MARGIN = 0.01


def eps_name(eps: float) -> str:
    """8/255 -> '8/255': budgets read as they are usually written."""
    return f"{round(eps * 255, 2):g}/255"


def key(attack: str, eps: float) -> str:
    return "clean" if attack == "clean" else f"{attack}@{eps_name(eps)}"


class Setting(NamedTuple):
    """One attack at one ε; `sweep_only` settings run on the sweep subset alone, `large` is the
    gradient-masking check at a large ε (fewer, larger steps)."""

    attack: str
    eps: float
    sweep_only: bool = False
    large: bool = False

    @property
    def key(self) -> str:
        return key(self.attack, self.eps)


class AdversarialEvaluator(pl.LightningModule):
    """Accuracy on the test split: clean, and under each attack.

    On every test image: clean, `attacks` at the table's ε `eps` ("fgsm"; "pgd": `pgd_steps`
    steps of `pgd_step_ratio`·ε from a random start; "noise": random ±ε signs, the control),
    and PGD at `large_eps`, where a model that is not masking gradients falls to near zero
    (`large_eps_steps` steps of 2.5·ε/steps, Madry et al.'s rule). The ε sweep (FGSM and PGD
    at each of `sweep_epsilons`) and standard AutoAttack at `eps` run on fixed subsets: the
    first `sweep_examples` (None: all) and `autoattack_examples` images of one permutation
    seeded 0, the same for every run and seed, so the AutoAttack subset lies inside the sweep
    subset when it is smaller. `attack_seed` (None: the run's seed) draws the random starts.
    """

    def __init__(
        self,
        checkpoint: str | None,
        output: str,
        eps: float = 8 / 255,
        attacks: tuple[str, ...] = ("fgsm", "pgd", "noise"),
        sweep_epsilons: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255),
        sweep_examples: int | None = None,
        pgd_steps: int = 20,
        pgd_step_ratio: float = 0.25,
        large_eps: float | None = 64 / 255,
        large_eps_steps: int = 10,
        autoattack_examples: int = 0,
        attack_seed: int | None = None,
        run_name: str | None = None,
    ):
        super().__init__()
        unknown = sorted(set(attacks) - set(ATTACKS))
        if unknown:
            raise RobustSSLError(f"unknown attack {unknown[0]!r}: choose from {', '.join(ATTACKS)}")
        for value in [eps, *sweep_epsilons] + ([large_eps] if large_eps is not None else []):
            check_epsilon(value)
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise RobustSSLError(f"classifier checkpoint '{checkpoint}' does not exist: run the "
                                 "fine-tuning that writes it, or fix the path")
        self.save_hyperparameters()
        self.settings = [Setting("clean", 0.0)] + [Setting(a, eps) for a in attacks]
        if large_eps is not None:
            self.settings.append(Setting("pgd", large_eps, large=True))
        self.settings += [Setting(a, e, sweep_only=True) for e in sweep_epsilons if e != eps
                          for a in ("fgsm", "pgd")]
        self.classifier: torch.nn.Module | None = None
        self.subsets: dict[str, torch.Tensor] | None = None
        self._start = 0.0

    @classmethod
    def of_model(cls, classifier: torch.nn.Module, output: str, **options
                 ) -> "AdversarialEvaluator":
        """An evaluator of a classifier that is not a FineTuner checkpoint (external.py): it
        takes [0, 1] pixels and has a `num_classes` attribute."""
        evaluator = cls(None, output, **options)
        evaluator.classifier = classifier
        return evaluator

    @property
    def seed(self) -> int:
        given = self.hparams.attack_seed
        return int(os.environ.get("PL_GLOBAL_SEED", 0)) if given is None else given

    def setup(self, stage: str) -> None:
        """Load the classifier here, not in __init__: a LightningModule built while the CLI
        instantiates another one would record the outer module's hyperparameters. The
        per-image records are made here too, in each process: under ddp_spawn, tensors made in
        __init__ would be one shared-memory tensor that every rank writes to."""
        if self.subsets is not None:
            return
        if self.classifier is None:
            if self.hparams.checkpoint is None:
                raise RobustSSLError("the evaluator has no classifier: give a checkpoint, or "
                                     "build it with AdversarialEvaluator.of_model")
            self.classifier = load_classifier(self.hparams.checkpoint)
        self.classifier.eval()
        num_classes = (self.classifier.hparams.num_classes
                       if isinstance(self.classifier, FineTuner) else self.classifier.num_classes)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        data_classes = getattr(datamodule, "num_classes", None)
        if data_classes is not None and data_classes != num_classes:
            raise RobustSSLError(
                f"classifier '{self.hparams.checkpoint or self.hparams.run_name}' predicts "
                f"{num_classes} classes but the data '{datamodule.hparams.dataset}' has "
                f"{data_classes}: evaluate it on the dataset it was trained on")
        if datamodule is None or getattr(datamodule, "test", None) is None:
            raise RobustSSLError("the evaluator needs a LabeledDataModule (its test split)")
        size = len(datamodule.test)
        order = torch.randperm(size, generator=torch.Generator().manual_seed(0))
        self.subsets = {name: order[:size if count is None else min(count, size)]
                        for name, count in (("sweep", self.hparams.sweep_examples),
                                            ("autoattack", self.hparams.autoattack_examples))}
        in_sweep = torch.zeros(size, dtype=torch.bool)
        in_sweep[self.subsets["sweep"]] = True
        device = self.trainer.strategy.root_device
        self.in_sweep = in_sweep.to(device)
        # per setting and image: whether it ran (each image runs on one rank) and was right
        self.ran = torch.zeros(len(self.settings), size, device=device)
        self.right = torch.zeros(len(self.settings), size, device=device)

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
        torch.manual_seed(self.seed)  # the random starts and the noise control

    def perturb(self, setting: Setting, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hp, eps = self.hparams, setting.eps
        if setting.attack == "clean":
            return x
        if setting.attack == "fgsm":
            return fgsm(self.classifier, x, y, eps)
        if setting.attack == "pgd" and setting.large:
            return pgd(self.classifier, x, y, eps, 2.5 * eps / hp.large_eps_steps,
                       hp.large_eps_steps)
        if setting.attack == "pgd":
            return pgd(self.classifier, x, y, eps, hp.pgd_step_ratio * eps, hp.pgd_steps)
        return random_sign_noise(x, eps)

    def test_step(self, batch, batch_idx: int) -> None:
        # Lightning tests under inference mode; attacks need autograd, on a normal copy.
        with torch.inference_mode(False):
            x, y, index = (t.clone() for t in batch)
            sweep = self.in_sweep[index]
            for row, setting in enumerate(self.settings):
                chosen = sweep if setting.sweep_only else torch.ones_like(sweep)
                if setting.sweep_only and not sweep.any():
                    continue
                xs, ys = (x[chosen], y[chosen]) if setting.sweep_only else (x, y)
                adversarial = self.perturb(setting, xs, ys)
                with torch.no_grad():
                    correct = (self(adversarial).argmax(1) == ys).float()
                self.ran[row, index[chosen]] = 1.0
                self.right[row, index[chosen]] = correct

    def on_test_epoch_end(self) -> None:
        """Per-image records summed over ranks (each rank saw its own shard); AutoAttack, on a
        fixed subset, runs once, on rank zero, which then writes the results."""
        ran = self.trainer.strategy.reduce(self.ran, reduce_op="sum").cpu().bool()
        right = self.trainer.strategy.reduce(self.right, reduce_op="sum").cpu().bool()
        if not self.trainer.is_global_zero:
            return
        records = {setting.key: (ran[i], right[i]) for i, setting in enumerate(self.settings)}
        if self.hparams.autoattack_examples > 0:
            records[key("autoattack", self.hparams.eps)] = self._autoattack(len(ran[0]))
        metrics = {name: hits[done].float().mean().item() if done.any() else float("nan")
                   for name, (done, hits) in records.items()}
        every = torch.ones_like(ran[0])
        metrics[key("worst", self.hparams.eps)] = worst_case(records, self.hparams.eps, every)
        subsets = {name: subset_metrics(records, self._mask(name, len(every)))
                   for name in ("sweep", "autoattack") if len(self.subsets[name]) > 0}
        counts = {"test": int(ran[0].sum())} | {f"{name}_subset": len(self.subsets[name])
                                                 for name in subsets}
        for name, value in metrics.items():
            self.log(f"test/{name}", value, rank_zero_only=True)
        sanity = sanity_checks(subset_metrics(records, every), subsets, self.hparams.eps,
                               self.hparams.large_eps, self.validation_history)
        self.write_results(metrics, subsets, counts, sanity)

    @property
    def validation_history(self) -> list[dict[str, float]]:
        return getattr(self.classifier, "validation_history", [])

    def _mask(self, subset: str, size: int) -> torch.Tensor:
        mask = torch.zeros(size, dtype=torch.bool)
        mask[self.subsets[subset]] = True
        return mask

    def _autoattack(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        test, index = self.trainer.datamodule.test, self.subsets["autoattack"]
        # normal tensors made outside inference mode: AutoAttack differentiates through them
        with torch.inference_mode(False):
            x = test.images[index.to(test.images.device)].clone().float().div(255).to(self.device)
            y = test.labels[index.to(test.labels.device)].clone().to(self.device)
            adversarial = autoattack(self.classifier, x, y, self.hparams.eps, seed=self.seed)
            with torch.no_grad():
                survived = (self(adversarial).argmax(1) == y).cpu()
        ran, right = torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool)
        ran[index], right[index] = True, survived
        return ran, right

    def write_results(self, metrics: dict[str, float], subsets: dict[str, dict[str, float]],
                      counts: dict[str, int], sanity: dict) -> None:
        hp = self.hparams
        for message in sanity["warnings"]:
            warnings.warn(f"sanity check: {message}", stacklevel=2)
        datamodule = self.trainer.datamodule
        result = {
            "run": hp.run_name or Path(hp.output).stem,
            "seed": self.seed,
            "eps": eps_name(hp.eps),
            "metrics": metrics,
            "subsets": subsets,
            "examples": counts,
            "sanity": sanity,
            "validation_history": self.validation_history,
            "data_source": getattr(datamodule, "source_description", lambda: None)(),
            "config": {
                "evaluator": dict(hp),
                "classifier": (dict(self.classifier.hparams)
                               if isinstance(self.classifier, FineTuner)
                               else getattr(self.classifier, "description", {})),
                "data": dict(getattr(datamodule, "hparams", {})),
            },
            "wall_time_s": round(time.perf_counter() - self._start, 2),
            "device": str(self.device),
            "versions": versions(),
            "git_commit": git_commit(),
        }
        path = Path(hp.output)
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
        model.validation_history = list(entry.get("validation_history", []))
    except (RobustSSLError, RuntimeError, TypeError, ValueError) as error:
        raise RobustSSLError(f"'{path}' is not a FineTuner checkpoint of this architecture "
                             f"({str(error).splitlines()[0]})") from None
    return model


def worst_case(records: dict, eps: float, mask: torch.Tensor) -> float:
    """Accuracy counting an image right only if every attack at `eps` that ran on all of
    `mask` left it right."""
    name = eps_name(eps)
    survived = mask.clone()
    used = [a for a in WORST_CASE if f"{a}@{name}" in records and records[f"{a}@{name}"][0][mask].all()]
    if not used:
        return float("nan")
    for attack in used:
        survived &= records[f"{attack}@{name}"][1]
    return survived[mask].float().mean().item()


def subset_metrics(records: dict, mask: torch.Tensor) -> dict[str, float]:
    """Every setting that ran on all of the subset, and the worst case at each ε, on it alone:
    the numbers to compare with what ran only there."""
    found = {name: right[mask].float().mean().item() for name, (ran, right) in records.items()
             if ran[mask].all()}
    for eps_text in sorted({name.split("@")[1] for name in found if "@" in name}):
        eps = float(eps_text.split("/")[0]) / 255
        worst = worst_case(records, eps, mask)
        if worst == worst:  # not NaN
            found[f"worst@{eps_text}"] = worst
    return found


def sanity_checks(metrics: dict[str, float], subsets: dict[str, dict[str, float]],
                  eps: float, large_eps: float | None,
                  history: list[dict[str, float]] | None = None) -> dict:
    """Flags for numbers that suggest a broken attack, a masked gradient or catastrophic
    overfitting. Each comparison uses numbers from the same images; `history` is the
    classifier's validation record (FineTuner.validation_history). Returns
    {"passed", "failed": [check names], "warnings": [messages]}."""
    failed: dict[str, str] = {}
    collapse = overfitting_collapse(history or [])
    if collapse:
        failed["catastrophic_overfitting"] = collapse
    sets = [("", metrics)] + [(f" (on the {n} subset)", m) for n, m in subsets.items()]
    for where, values in sets:
        clean = values.get("clean")
        attacked = sorted(k for k, v in values.items() if k.split("@")[0] in WORST_CASE
                          and clean is not None and v > clean + MARGIN)
        if attacked:
            failed.setdefault("above_clean", f"attacked accuracy above clean ({clean:.4f}) for "
                                             f"{', '.join(attacked)}{where}")
        for e in sorted({k.split("@")[1] for k in values if "@" in k}):
            one, many = values.get(f"fgsm@{e}"), values.get(f"pgd@{e}")
            if one is None or many is None:
                continue
            if many > one + MARGIN:
                failed.setdefault("pgd_above_fgsm", f"PGD accuracy {many:.4f} above FGSM "
                                  f"{one:.4f} at {e}{where}: a weak PGD or gradient masking")
            elif one - many > FGSM_GAP and one > FGSM_RATIO * many:
                failed.setdefault("fgsm_far_above_pgd", f"FGSM accuracy {one:.4f} far above "
                                  f"PGD {many:.4f} at {e}{where}: one step fails where twenty "
                                  "succeed (gradient masking or catastrophic overfitting)")
    name = eps_name(eps)
    fgsm_acc, noise_acc = metrics.get(f"fgsm@{name}"), metrics.get(f"noise@{name}")
    if fgsm_acc is not None and noise_acc is not None and noise_acc < fgsm_acc:
        failed["noise_beats_fgsm"] = (f"random noise ({noise_acc:.4f}) hurts more than FGSM "
                                      f"({fgsm_acc:.4f}) at {name}: the attack is not working")
    large = metrics.get(f"pgd@{eps_name(large_eps)}") if large_eps is not None else None
    if large is not None and large > COLLAPSE:
        failed["no_collapse"] = (f"accuracy {large:.4f} under PGD at {eps_name(large_eps)} is not "
                                 "near zero: possible gradient masking")
    on_subset = subsets.get("autoattack", {})
    auto, many = on_subset.get(f"autoattack@{name}"), on_subset.get(f"pgd@{name}")
    if auto is not None and many is not None and auto > many + MARGIN:
        failed["autoattack_above_pgd"] = (f"AutoAttack accuracy {auto:.4f} above PGD {many:.4f} "
                                          f"on the same images at {name}: AutoAttack misused")
    return {"passed": not failed, "failed": list(failed), "warnings": list(failed.values())}


def overfitting_collapse(history: list[dict[str, float]]) -> str | None:
    """Catastrophic overfitting in a validation record: PGD accuracy that ends below half its
    best and more than 5 points under it (Wong et al. 2020 saw it fall to ~0 within an epoch)."""
    measured = [h for h in history if "pgd_acc" in h]
    if len(measured) < 2:
        return None
    best, last = max(measured, key=lambda h: h["pgd_acc"]), measured[-1]
    if best["pgd_acc"] - last["pgd_acc"] > FGSM_GAP and last["pgd_acc"] < best["pgd_acc"] / 2:
        return (f"validation PGD accuracy fell from {best['pgd_acc']:.4f} (epoch {best['epoch']}) "
                f"to {last['pgd_acc']:.4f} at the end, FGSM {last.get('fgsm_acc', float('nan')):.4f}: "
                "catastrophic overfitting; model.random_start=true trains with FGSM-RS")
    return None


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
