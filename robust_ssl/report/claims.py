"""The paper's claims as data (../shared/reference/paper.txt), and a verdict for each from the
per-image records of finished Table 1 and Table 2 cells: `make claims` writes claims.md,
claims.json, claims.csv and claims.png, and runs nothing.

A claim is a set of comparisons between table cells, each asserting a direction. For every
setting the cells were evaluated under (FGSM, PGD-20, their worst case per image and AutoAttack
where it ran, at the table's ε in pixel space and, where evaluated, in the normalised
convention, and each ε of the pixel sweep on its subset), each comparison gets its paired
bootstrap interval (report/bootstrap.py) and a verdict. Multiple comparisons: within a claim
the k comparisons' intervals are at level 1 - 0.05/k (Bonferroni), so a claim's verdict keeps a
5% family-wise error; nothing is corrected across claims, attacks or ε, which are separate
questions, reported side by side. A claim holds when every comparison holds, is contradicted
when any comparison is, and is inconclusive otherwise.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from robust_ssl.evaluation.result import (CORRUPTION, CORRUPTION_MEAN, TABLE_EPS, PerImage,
                                          budgets, eps_name, eps_value, key, read_records,
                                          read_result)
from robust_ssl.plumbing.steps import Steps
from robust_ssl.report import bootstrap, power
from robust_ssl.runs import grid

EPS = eps_name(TABLE_EPS)
NORMALIZED = "-norm"  # an attack evaluated in the normalised-ε convention: fgsm-norm@8/255
FAMILY_ERROR = 0.05
ABOUT = 0.05  # "about 38%": within 5 points
NOT_WORSE = 0.01  # "at least as robust": not more than a point below


@dataclass(frozen=True)
class Side:
    """One cell of a table, by its place (grid.Cell.row, .column)."""

    table: str
    row: str
    column: str

    def label(self) -> str:
        return f"{self.table} {self.row} ({self.column})"


@dataclass(frozen=True)
class Comparison:
    """`better` minus `worse` above `threshold` (`worse` None: `better`'s accuracy itself;
    several `worse`: the best of them, chosen by its estimate)."""

    better: Side
    worse: tuple[Side, ...] = ()
    threshold: float = 0.0
    per_minute: bool = False  # robust accuracy per training minute of each side

    @property
    def sides(self) -> tuple[Side, ...]:
        return (self.better, *self.worse)


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    comparisons: tuple[Comparison, ...]


def t1(row: str, column: str) -> Side:
    return Side("table1", row, column)


def t2(row: str, column: str) -> Side:
    return Side("table2", row, column)


FRACTIONS = tuple(grid.FRACTIONS)
CLAIMS = (
    Claim("C1", "SimCLR pretraining is more robust than training from scratch at every label "
          "fraction, without adversarial fine-tuning (Table 1; 'even though the accuracy on "
          "regular test samples is marginally lower')",
          tuple(Comparison(t1(f, "clean"), (t1("supervised", "clean"),)) for f in FRACTIONS)),
    Claim("C2", "... and with adversarial fine-tuning ('This holds even when the model is "
          "trained with an adversarial loss while fine-tuning')",
          tuple(Comparison(t1(f, "adv"), (t1("supervised", "adv"),)) for f in FRACTIONS)),
    Claim("C3", "SimCLR with 30% labels and adversarial fine-tuning reaches about 38% "
          "adversarial accuracy (abstract; within 5 points or above)",
          (Comparison(t1("30%", "adv"), (), 0.38 - ABOUT),)),
    Claim("C4", "robustness grows with the label fraction, 1% < 10% < 30% < 100% (Table 1)",
          tuple(Comparison(t1(high, training), (t1(low, training),))
                for training in grid.TRAININGS for low, high in zip(FRACTIONS, FRACTIONS[1:]))),
    Claim("C5", "adversarial fine-tuning raises robust accuracy at every fraction (Table 1)",
          tuple(Comparison(t1(f, "adv"), (t1(f, "clean"),)) for f in FRACTIONS)),
    Claim("C6", "SimCLR is more robust than Jigsaw and Rotation after partial adversarial "
          "fine-tuning (Table 2), and the multi-task combination at least as robust as its "
          "best single task (the title's premise; not more than a point below)",
          (Comparison(t2("simclr", "partial"), (t2("jigsaw", "partial"),)),
           Comparison(t2("simclr", "partial"), (t2("rotation", "partial"),)),
           Comparison(t2("multitask", "partial"), tuple(t2(task, "partial") for task in
                                                       ("simclr", "rotation", "jigsaw")),
                      -NOT_WORSE))),
    Claim("C7", "pretrain-then-fine-tune is more efficient than supervised adversarial "
          "training: robust accuracy per training minute, SimCLR 30% with adversarial "
          "fine-tuning (its pretraining's minutes shared by the 8 Table 1 probes that read "
          "its encoder) against the supervised baseline trained with FGSM",
          (Comparison(t1("30%", "adv"), (t1("supervised", "adv"),), per_minute=True),)),
    Claim("C8", "beyond the paper: C6's lead of SimCLR extends to the methods the field uses, "
          "SimCLR more robust than BYOL, Barlow Twins and MoCo v2 after partial adversarial "
          "fine-tuning (Table 2's extra rows; the paper does not test them)",
          tuple(Comparison(t2("simclr", "partial"), (t2(task, "partial"),))
                for task in grid.BEYOND_PAPER_TASKS)),
)


def cells_by_side(pretrain: str, seeds: tuple[int, ...]) -> dict[Side, list[grid.Cell]]:
    """The evaluated cells of the sides some claim compares: a cell no claim reads (Table 2's
    linear probes, the random encoder) is neither loaded nor reported missing."""
    read = {side for claim in CLAIMS for comparison in claim.comparisons
            for side in comparison.sides}
    found: dict[Side, list[grid.Cell]] = {}
    for table, cells in (("table1", grid.table1(pretrain, seeds)),
                         ("table2", grid.table2(pretrain, seeds))):
        for cell in cells:
            side = Side(table, cell.row, cell.column)
            if cell.evaluated and side in read:
                found.setdefault(side, []).append(cell)
    return found


def training_minutes(results: Path, cell: grid.Cell, sharing: int) -> float | None:
    """A cell's training minutes, its encoder's pretraining shared by `sharing` cells."""
    def minutes(name: str, stage: str) -> float | None:
        path = results / name / f"{stage}_minutes.txt"
        return float(path.read_text()) if path.is_file() else None

    own = minutes(cell.name, cell.stage)
    if own is None or cell.encoder is None:
        return own
    pretraining = minutes(cell.encoder, "pretrain")
    return None if pretraining is None else own + pretraining / sharing


class Records:
    """The per-image records of every cell found, by name, and the settings they share."""

    def __init__(self, results: Path, cells: dict[Side, list[grid.Cell]]):
        self.results, self.cells = results, cells
        self.loaded: dict[str, PerImage] = {}
        self.missing: list[str] = []
        self.normalized_pgd_on: set[str] = set()  # the images the normalised PGD attacked
        for side_cells in cells.values():
            for cell in side_cells:
                path = results / f"{cell.name}.json"
                records = read_records(path) if path.is_file() else None
                if records is not None:
                    self.loaded[cell.name] = records
                    if f"pgd{NORMALIZED}@{EPS}" in records.ran:
                        evaluator = read_result(path).data.get("config", {}).get("evaluator", {})
                        self.normalized_pgd_on.add(evaluator.get("normalized_pgd_on", "all"))
                elif path.is_file():
                    self.missing.append(f"{cell.name} (evaluated before per-image records "
                                        "were kept: run its table again with RESTART=1, which "
                                        "evaluates it again and keeps its training)")
                else:
                    self.missing.append(f"{cell.name} (not run)")

    def side(self, side: Side, setting: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(seeds × images right, test indices) on the images where `setting` ran, or None."""
        rows, index = [], None
        for cell in self.cells.get(side, []):
            if cell.name not in self.loaded:
                return None
            record = self.loaded[cell.name]
            right = survived(record, setting)
            if right is None:
                return None
            ran, hits = right
            this = record.index_of(setting)[ran]
            if index is not None and not np.array_equal(this, index):
                return None  # seeds evaluated on different images: not comparable
            index = this
            rows.append(hits[ran])
        return (np.stack(rows), index) if rows else None


def survived(record: PerImage, setting: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(ran, right) of a setting; `worst@ε` is FGSM and PGD-20 both survived, on the images
    where both ran (AutoAttack, on its own subset, is its own setting); `corruption/mean` the
    share of an image's corrupted versions still right (a fraction, not a bit)."""
    if setting == CORRUPTION_MEAN:
        parts = [name for name in record.ran if name.startswith(CORRUPTION)]
        if not parts:
            return None
        ran = np.logical_and.reduce([record.ran[p] for p in parts])
        return ran, np.mean([record.right[p] for p in parts], axis=0)
    attack, _, budget = setting.partition("@")
    if attack.startswith("worst"):
        suffix = attack[len("worst"):]
        parts = [f"fgsm{suffix}@{budget}", f"pgd{suffix}@{budget}"]
        if not all(part in record.ran for part in parts):
            return None
        ran = np.logical_and.reduce([record.ran[p] for p in parts])
        return ran, np.logical_and.reduce([record.right[p] for p in parts])
    if setting not in record.ran:
        return None
    return record.ran[setting], record.right[setting]


def settings_of(records: Records) -> list[tuple[str, str, str]]:
    """(setting key, convention, images) of everything to judge: the table's ε on every test
    image (AutoAttack on its subset), each convention, then the pixel sweep on its subset."""
    keys = set().union(*(r.ran for r in records.loaded.values())) if records.loaded else set()
    chosen = []
    for suffix, convention in (("", "pixel"), (NORMALIZED, "normalized")):
        for attack in ("fgsm", "pgd", "worst", "autoattack"):
            name = f"{attack}{suffix}@{EPS}"
            base = [f"fgsm{suffix}@{EPS}"] if attack == "worst" else [name]
            if all(part in keys for part in base):
                chosen.append((name, convention, "AutoAttack subset" if attack == "autoattack"
                               else "all test images"))
    for budget in budgets(keys):
        if budget != EPS:
            chosen += [(key(attack, eps_value(budget)), "pixel", "sweep subset")
                       for attack in ("fgsm", "pgd") if key(attack, eps_value(budget)) in keys]
    return chosen


def judge(claim: Claim, records: Records, setting: str, minutes: dict[Side, float | None]
          ) -> dict:
    """Every comparison of `claim` under `setting`, at the claim's Bonferroni level."""
    level = 1 - FAMILY_ERROR / len(claim.comparisons)
    judged = []
    for comparison in claim.comparisons:
        judged.append(compare(comparison, records, setting, level, minutes))
    verdicts = [c["verdict"] for c in judged]
    if "missing" in verdicts:
        overall = "missing"
    elif "contradicted" in verdicts:
        overall = "contradicted"
    elif all(v == "holds" for v in verdicts):
        overall = "holds"
    else:
        overall = "inconclusive"
    return {"verdict": overall, "level": level, "comparisons": judged}


def compare(comparison: Comparison, records: Records, setting: str, level: float,
            minutes: dict[Side, float | None]) -> dict:
    sides = comparison.sides
    found = [records.side(side, setting) for side in sides]
    described = {"better": comparison.better.label(),
                 "worse": [side.label() for side in comparison.worse],
                 "threshold": comparison.threshold}
    if any(f is None for f in found) or (comparison.per_minute and
                                         any(minutes.get(side) is None for side in sides)):
        return described | {"verdict": "missing"}
    common = found[0][1]
    for _, index in found[1:]:
        common = np.intersect1d(common, index)
    aligned = [right[:, np.searchsorted(index, common)] for right, index in found]
    if len(common) == 0:
        return described | {"verdict": "missing"}
    if len(aligned) > 2:  # the best of several: the one with the highest estimate
        best = 1 + int(np.argmax([a.mean() for a in aligned[1:]]))
        aligned = [aligned[0], aligned[best]]
        described["worse"] = [sides[best].label()]
        sides = [sides[0], sides[best]]
    scale = ([1 / minutes[side] for side in sides] if comparison.per_minute
             else [1.0] * len(aligned))
    if len(aligned) == 1:
        statistic = lambda a: a * scale[0]  # noqa: E731
    else:
        statistic = lambda a, b: a * scale[0] - b * scale[1]  # noqa: E731
    found_interval = bootstrap.interval(aligned, statistic, level)
    found = described | asdict(found_interval) | {
        "images": int(len(common)), "seeds": [int(a.shape[0]) for a in aligned],
        "verdict": bootstrap.verdict(found_interval, comparison.threshold)}
    if found["verdict"] == "inconclusive":
        needed = power.needed(aligned, scale, comparison.threshold, level)
        found["to_decide"] = asdict(needed) | {"text": power.statement(
            needed, len(common), min(found["seeds"]))}
    return found


def audit(results: Path, pretrain: str, seeds: tuple[int, ...], what: str = "claims") -> dict:
    """Every claim's verdict under every setting; with several seeds, each verdict also carries
    what each seed's cells alone would have given (`each_seed`), so a verdict that one seed
    would have read differently shows."""
    cells = cells_by_side(pretrain, seeds)
    records = Records(results, cells)
    minutes = {side: mean_minutes(results, side_cells) for side, side_cells in cells.items()}
    verdicts = []
    settings = settings_of(records)
    steps = Steps(len(settings), what, stream=sys.stderr)
    for setting, convention, images in settings:
        for claim in CLAIMS:
            verdicts.append({"claim": claim.id, "setting": setting, "convention": convention,
                             "images": images} | judge(claim, records, setting, minutes))
        steps.step(f"{convention} {setting}")
    if len(seeds) > 1:
        alone = {seed: verdicts_alone(results, pretrain, seed) for seed in seeds}
        for v in verdicts:
            v["each_seed"] = {str(seed): alone[seed].get((v["claim"], v["setting"]), "missing")
                              for seed in seeds}
    return {"claims": [{"id": c.id, "text": c.text} for c in CLAIMS], "verdicts": verdicts,
            "missing": sorted(set(records.missing)), "seeds": list(seeds),
            "normalized_pgd_on": sorted(records.normalized_pgd_on),
            "bootstrap": {"draws": bootstrap.DRAWS, "family_error": FAMILY_ERROR,
                          "seed": bootstrap.SEED},
            "paper_eps": paper_eps(records, cells)}


def verdicts_alone(results: Path, pretrain: str, seed: int) -> dict[tuple[str, str], str]:
    """(claim, setting) -> the verdict of `seed`'s cells alone, as a one-seed audit gives it."""
    found = audit(results, pretrain, (seed,), f"claims, seed {seed} alone")
    return {(v["claim"], v["setting"]): v["verdict"] for v in found["verdicts"]}


def mean_minutes(results: Path, cells: list[grid.Cell]) -> float | None:
    sharing = sum(1 for c in grid.table1("x", (0,)) if c.encoder is not None)
    found = [training_minutes(results, cell, sharing) for cell in cells]
    return None if not found or None in found else float(np.mean(found))


def paper_eps(records: Records, cells: dict[Side, list[grid.Cell]]) -> dict:
    """Per cell with a paper FGSM number: the pixel ε at which this suite's FGSM accuracy
    (on the sweep subset, linearly interpolated between the swept ε) equals the paper's."""
    from robust_ssl.report.results import PAPER_TABLE1, PAPER_TABLE2

    papers = {t1(row, "clean"): numbers[1] for row, numbers in PAPER_TABLE1.items()}
    papers |= {t1(row, "adv"): numbers[3] for row, numbers in PAPER_TABLE1.items()}
    papers |= {t2(row, "partial"): numbers[0] for row, numbers in PAPER_TABLE2.items()}
    found = {}
    for side, number in papers.items():
        curve = fgsm_curve(records, side)
        found[side.label()] = {"paper_fgsm": number, "eps_pixel": crossing(curve, number / 100),
                               "curve": {eps_name(e): a for e, a in curve}}
    values = [v["eps_pixel"] for v in found.values() if v["eps_pixel"] is not None]
    from robust_ssl.models.backbone import CIFAR10_STD

    return {"cells": found,
            "normalized_8_255_in_pixels": [8 / 255 * s for s in CIFAR10_STD],
            "spread": [min(values), max(values)] if values else None}


def fgsm_curve(records: Records, side: Side) -> list[tuple[float, float]]:
    """(ε, FGSM accuracy) on the sweep subset (the images the smallest swept ε ran on), the
    mean over the side's seeds; ε = 0 is clean accuracy there."""
    loaded = [records.loaded[c.name] for c in records.cells.get(side, [])
              if c.name in records.loaded]
    if not loaded:
        return []
    swept = [b for b in budgets(loaded[0].ran, "fgsm") if b != EPS]
    points = []
    for setting in ["clean"] + [key("fgsm", eps_value(b)) for b in budgets(loaded[0].ran, "fgsm")]:
        values = []
        for record in loaded:
            if setting not in record.ran:
                break
            subset = record.ran[key("fgsm", eps_value(swept[0]))] if swept else record.ran[setting]
            values.append(float(record.right[setting][subset].mean()))
        if len(values) == len(loaded):
            eps = 0.0 if setting == "clean" else eps_value(setting.partition("@")[2])
            points.append((eps, float(np.mean(values))))
    return sorted(points)


def crossing(curve: list[tuple[float, float]], target: float) -> float | None:
    """The first ε where the piecewise-linear accuracy curve falls to `target`."""
    for (e0, a0), (e1, a1) in zip(curve, curve[1:]):
        if a0 >= target >= a1 and a0 != a1:
            return e0 + (a0 - target) / (a0 - a1) * (e1 - e0)
    return None
