"""The AdversarialEvaluator: Lightning glue that runs a classifier's test split through its
attack settings and writes one result per run.

Used with `trainer.test(AdversarialEvaluator(...), datamodule)`. Beyond the paper's FGSM it runs
PGD-20, an ε sweep and (on a subset) AutoAttack, keeps whether each test image survived each
setting (records.py), and from that reports the worst case per image and compares attacks only
on the images both ran on. The attacks are the registry's (attacks.py), the sanity checks
sanity.py's, the JSON result.py's; this module plans, runs and reduces.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytorch_lightning as pl
import torch

from robust_ssl.attacks import Attack, build_attack, check_eps_space, check_epsilon
from robust_ssl.data.corruptions import (SEVERITIES, check_corruptions, choose_source,
                                         describe, frost_photographs)
from robust_ssl.data.modules import check_classes, to_unit_float
from robust_ssl.errors import RobustSSLError
from robust_ssl.evaluation.classifier import load_classifier
from robust_ssl.evaluation.examples import COUNT, chosen, draw
from robust_ssl.evaluation.records import corruption_accuracies, subset_metrics, worst_case
from robust_ssl.evaluation.result import (CORRUPTION, CORRUPTION_MEAN, eps_name, key,
                                          write_records, write_result)
from robust_ssl.evaluation.sanity import sanity_checks
from robust_ssl.finetune import FineTuner
from robust_ssl.finetune.finetuner import NOT_RECORDED
from robust_ssl.plumbing.provenance import git_commit, versions
from robust_ssl.plumbing.steps import Steps

ATTACKS = ("fgsm", "pgd", "noise")  # what runs on every test image at the table's ε
PGD_IMAGES = ("survivors", "all")  # the images the normalised PGD attacks


class Setting(NamedTuple):
    """One attack at one ε; `sweep_only` settings run on the sweep subset alone. A setting
    `after` others attacks only the images they all left right and counts the rest as lost
    (AutoAttack's order): its accuracy is the per-image worst case of them and itself, at the
    cost of attacking the survivors alone."""

    attack: Attack | None  # None: clean
    sweep_only: bool = False
    after: tuple[str, ...] = ()  # keys of earlier settings

    @property
    def key(self) -> str:
        return "clean" if self.attack is None else key(self.attack.metric_name, self.attack.eps)


class AdversarialEvaluator(pl.LightningModule):
    """Accuracy on the test split: clean, and under each attack.

    On every test image: clean, `attacks` at the table's ε `eps` ("fgsm"; "pgd": `pgd_steps`
    steps of `pgd_step_ratio`·ε from a random start; "noise": random ±ε signs, the control),
    and PGD at `large_eps`, where a model that is not masking gradients falls to near zero
    (`large_eps_steps` steps of 2.5·ε/steps, Madry et al.'s rule). The ε sweep (FGSM and PGD
    at each of `sweep_epsilons`) and standard AutoAttack at `eps` run on fixed subsets: the
    first `sweep_examples` (None: all) and `autoattack_examples` images of one permutation
    seeded 0, the same for every run and seed, so the AutoAttack subset lies inside the sweep
    subset when it is smaller (`autoattack_iterations`: None, the standard attack's; a
    rehearsal cuts them). `attack_seed` (None: the run's seed) draws the random starts.
    `eps_space` is the convention of all of these (attacks.py: `pixel`, or `normalized`, ε on
    the normalised input); `normalized_attacks` also run at `eps` in the normalised convention
    on every test image (keys `fgsm-norm@8/255`), so both conventions are judged on one run.
    `normalized_pgd_on` "survivors" attacks with that PGD only the images that clean and the
    normalised FGSM left right, counting the others lost (its number is then the worst case
    of the three, and it costs a fraction of a full PGD); "all": every image, PGD alone.
    `autoattack_examples` None: AutoAttack on every test image.

    `corruptions` ("none", "all" or a list of CIFAR-10-C's 15 names): clean accuracy on the
    test images under each at severities 1-5, from `corruption_source` (data/corruptions.py:
    "published" CIFAR-10-C files, "generated" here with `corruption_seed`, or "auto": the
    published ones where they are), never both in one run; the mean over every corruption
    and severity is the metric `corruption/mean`, the rest is in the result's `corruptions`.
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
        autoattack_examples: int | None = 0,
        autoattack_iterations: int | None = None,
        attack_seed: int | None = None,
        run_name: str | None = None,
        eps_space: str = "pixel",
        normalized_attacks: tuple[str, ...] = (),
        normalized_pgd_on: str = "survivors",
        corruptions: str | list[str] = "none",
        corruption_source: str = "auto",
        corruption_seed: int = 0,
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
        check_eps_space(eps_space)
        unknown = sorted(set(normalized_attacks) - {"fgsm", "pgd"})
        if unknown:
            raise RobustSSLError(f"normalized_attacks: {unknown[0]!r} has no normalised "
                                 "convention here: choose from fgsm, pgd")
        if normalized_pgd_on not in PGD_IMAGES:
            raise RobustSSLError(f"normalized_pgd_on: {normalized_pgd_on!r} is not one of "
                                 f"{', '.join(PGD_IMAGES)}")
        pgd = dict(steps=pgd_steps, step_ratio=pgd_step_ratio, eps_space=eps_space)
        self.settings = [Setting(None)] + [Setting(build_attack(a, eps, **pgd)) for a in attacks]
        if large_eps is not None:  # fewer, larger steps: 2.5·ε over the steps (Madry et al.)
            self.settings.append(Setting(build_attack("pgd", large_eps, steps=large_eps_steps,
                                                      step_ratio=2.5 / large_eps_steps,
                                                      eps_space=eps_space)))
        if eps_space != "normalized":
            self.settings += self._normalized_settings(normalized_attacks, normalized_pgd_on,
                                                       pgd | {"eps_space": "normalized"})
        self.settings += [Setting(build_attack(a, e, **pgd), sweep_only=True)
                          for e in sweep_epsilons if e != eps for a in ("fgsm", "pgd")]
        self.corruption_names = check_corruptions(corruptions)
        if corruption_source not in ("auto", "published", "generated"):
            raise RobustSSLError(f"corruption_source={corruption_source!r}: choose auto, "
                                 "published or generated")
        self.classifier: torch.nn.Module | None = None
        self.subsets: dict[str, torch.Tensor] | None = None
        self._start = 0.0

    def _normalized_settings(self, attacks: tuple[str, ...], pgd_on: str, options: dict
                             ) -> list[Setting]:
        settings = [Setting(build_attack(a, self.hparams.eps, **options))
                    for a in ("fgsm", "pgd") if a in attacks]
        if pgd_on == "survivors" and "pgd" in attacks:
            earlier = ("clean",) + tuple(s.key for s in settings[:-1])
            settings[-1] = settings[-1]._replace(after=earlier)
        return settings

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
        if datamodule is None or getattr(datamodule, "test", None) is None:
            raise RobustSSLError("the evaluator needs a LabeledDataModule (its test split)")
        check_classes(f"classifier '{self.hparams.checkpoint or self.hparams.run_name}' "
                      "predicts", num_classes, datamodule.num_classes,
                      datamodule.hparams.dataset, "evaluate it on the dataset it was trained on")
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

    def test_step(self, batch, batch_idx: int) -> None:
        # Lightning tests under inference mode; attacks need autograd, on a normal copy.
        with torch.inference_mode(False):
            x, y, index = (t.clone() for t in batch)
            sweep = self.in_sweep[index]
            right: dict[str, torch.Tensor] = {}  # per setting: right on each image of the batch
            for row, setting in enumerate(self.settings):
                covered = sweep if setting.sweep_only else torch.ones_like(sweep)
                if not covered.any():
                    continue
                attacked = covered.clone()
                for earlier in setting.after:
                    attacked &= right[earlier]
                right[setting.key] = torch.zeros_like(covered)
                if attacked.any():
                    xs, ys = (x, y) if attacked.all() else (x[attacked], y[attacked])
                    adversarial = (xs if setting.attack is None
                                   else setting.attack(self.classifier, xs, ys))
                    with torch.no_grad():
                        right[setting.key][attacked] = self(adversarial).argmax(1) == ys
                self.ran[row, index[covered]] = 1.0
                self.right[row, index[covered]] = right[setting.key][covered].float()

    def on_test_epoch_end(self) -> None:
        """Per-image records summed over ranks (each rank saw its own shard); AutoAttack, on a
        fixed subset, runs once, on rank zero, which then writes the results."""
        ran = self.trainer.strategy.reduce(self.ran, reduce_op="sum").cpu().bool()
        right = self.trainer.strategy.reduce(self.right, reduce_op="sum").cpu().bool()
        if not self.trainer.is_global_zero:
            return
        records = {setting.key: (ran[i], right[i]) for i, setting in enumerate(self.settings)}
        if self.runs_autoattack:
            records[key("autoattack", self.hparams.eps)] = self._autoattack(len(ran[0]))
        metrics = {name: hits[done].float().mean().item() if done.any() else float("nan")
                   for name, (done, hits) in records.items()}
        every = torch.ones_like(ran[0])
        suffix = "-norm" if self.hparams.eps_space == "normalized" else ""
        metrics[key("worst" + suffix, self.hparams.eps)] = worst_case(records, self.hparams.eps,
                                                                      every, suffix)
        subsets = {name: subset_metrics(records, self._mask(name, len(every)))
                   for name in ("sweep", "autoattack") if len(self.subsets[name]) > 0}
        counts = {"test": int(ran[0].sum())} | {f"{name}_subset": len(self.subsets[name])
                                                 for name in subsets}
        corrupted, summary, corruption_index = self._corruptions()
        if summary is not None:
            metrics[CORRUPTION_MEAN] = summary["mean"]
        for name, value in metrics.items():
            self.log(f"test/{name}", value, rank_zero_only=True)
        sanity = sanity_checks(subset_metrics(records, every), subsets, self.hparams.eps,
                               self.hparams.large_eps, self.validation_history)
        self.write_results(metrics, subsets, counts, sanity, summary)
        test_index = getattr(self.trainer.datamodule, "test_index", None)
        write_records(self.hparams.output, {name: (done.numpy(), hits.numpy())
                                            for name, (done, hits) in records.items()},
                      (torch.arange(len(every)) if test_index is None else test_index.cpu()).numpy(),
                      corrupted, corruption_index)

    @property
    def runs_autoattack(self) -> bool:
        count = self.hparams.autoattack_examples
        return count is None or count > 0

    def _corruptions(self) -> tuple[dict, dict | None, np.ndarray | None]:
        """Clean accuracy under every corruption and severity asked for: (per-image records,
        the summary for the result, the corrupted images' indices); nothing when none."""
        if not self.corruption_names:
            return {}, None, None
        datamodule, hp = self.trainer.datamodule, self.hparams
        data_dir, dataset = datamodule.hparams.data_dir, datamodule.hparams.dataset
        source = choose_source(hp.corruption_source, data_dir, dataset)
        names, skipped, frost = list(self.corruption_names), {}, None
        if source == "generated" and "frost" in names:
            frost = frost_photographs(data_dir)
            if frost is None:
                names.remove("frost")
                skipped["frost"] = ("generating frost needs the generator's photographs in "
                                    "DATA_DIR/frost/ (frost1.png ... frost5.jpg of "
                                    "hendrycks/robustness, ImageNet-C/create_c/)")
        records, index, paired = {}, None, True
        steps = Steps(len(names) * len(SEVERITIES), f"corruptions ({source})")
        for name in names:
            for severity in SEVERITIES:
                found = datamodule.corrupted_test(name, severity, source, hp.corruption_seed,
                                                  frost)
                steps.step(f"{name} {severity}")
                index = found.index if index is None else index
                paired &= found.paired
                right = self._predict_right(found.images, found.labels)
                records[f"{CORRUPTION}{name}/{severity}"] = (np.ones(len(right), dtype=bool),
                                                             right)
        summary = {"source": describe(source, data_dir, dataset, hp.corruption_seed),
                   "kind": source, "paired": paired,
                   "images": int(len(index)) if index is not None else 0,
                   "evaluated": names, "skipped": skipped} | corruption_accuracies(records)
        for part in ("per_severity", "per_corruption"):
            for name, value in summary[part].items():
                self.log(f"test/corruption/{part.removeprefix('per_')}/{name}", value,
                         rank_zero_only=True)
        return records, summary, index.numpy() if index is not None else None

    def _predict_right(self, images: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """Whether the classifier gets each uint8 image right (clean inference, in batches)."""
        batch = getattr(self.trainer.datamodule.hparams, "eval_batch_size", 500)
        right = []
        with torch.no_grad():
            for start in range(0, len(images), batch):
                x = images[start:start + batch].to(self.device).float().div_(255)
                y = labels[start:start + batch].to(self.device)
                right.append((self(x).argmax(1) == y).cpu())
        return torch.cat(right).numpy()

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
            attack = build_attack("autoattack", self.hparams.eps, seed=self.seed,
                                  iterations=self.hparams.autoattack_iterations)
            adversarial = attack(self.classifier, x, y)
            with torch.no_grad():
                survived = (self(adversarial).argmax(1) == y).cpu()
        ran, right = torch.zeros(size, dtype=torch.bool), torch.zeros(size, dtype=torch.bool)
        ran[index], right[index] = True, survived
        return ran, right

    def example_panel(self, path: Path, count: int = COUNT) -> Path:
        """The first `count` test images, clean and under this evaluation's FGSM and PGD at
        the table's ε, with the classes predicted (examples.py)."""
        test = self.trainer.datamodule.test
        hp = self.hparams
        names = {"fgsm": "FGSM", "pgd": f"PGD-{hp.pgd_steps}"}
        attacks = {names[s.attack.name]: s.attack for s in self.settings
                   if s.attack is not None and s.attack.name in names and not s.sweep_only
                   and s.attack.eps == hp.eps and s.attack.eps_space == hp.eps_space}
        index = chosen(test.labels.cpu(), count).to(test.labels.device)
        images = to_unit_float(test.images[index].to(self.device))
        return draw(self.classifier, images, test.labels[index].to(self.device),
                    list(test.classes), attacks, path,
                    f"{self.hparams.run_name or Path(self.hparams.output).stem}: ε = "
                    f"{eps_name(self.hparams.eps)} ({self.hparams.eps_space})")

    def write_results(self, metrics: dict[str, float], subsets: dict[str, dict[str, float]],
                      counts: dict[str, int], sanity: dict, corruptions: dict | None = None
                      ) -> None:
        hp = self.hparams
        for message in sanity["warnings"]:
            warnings.warn(f"sanity check: {message}", stacklevel=2)
        datamodule = self.trainer.datamodule
        result = {
            "run": hp.run_name or Path(hp.output).stem,
            "seed": self.seed,
            "eps": eps_name(hp.eps),
            "eps_space": hp.eps_space,
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
        if corruptions is not None:
            result["corruptions"] = corruptions
        pretraining = getattr(self.classifier, "pretraining", NOT_RECORDED)
        if pretraining != NOT_RECORDED:
            result["pretraining"] = pretraining
        write_result(hp.output, result)
