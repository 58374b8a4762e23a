"""What every report reads: the run results of a table's cells (through the result owner,
evaluation/result.py), one table entry over seeds (`Stat`), and the paper's and the literature's
numbers to print beside them."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from robust_ssl.errors import RobustSSLError
from robust_ssl.evaluation.result import TABLE_EPS, Result, eps_name, read_result
from robust_ssl.runs import grid

EPS = eps_name(TABLE_EPS)  # the tables' ε, as metric keys spell it
# Table 1 of the paper, accuracy %: clean, FGSM, clean after adversarial fine-tuning, FGSM after.
PAPER_TABLE1 = {"supervised": (68, 23, 66, 36), "1%": (58, 26, 49, 29), "10%": (61, 32, 60, 36),
                "30%": (63, 33, 62, 38), "100%": (63, 35, 62, 40)}
# Table 2 of the paper: FGSM accuracy % after partial adversarial fine-tuning on 30% of labels
# (one-number rows, indexed like Table 1's).
PAPER_TABLE2 = {"rotation": (25,), "jigsaw": (29,), "simclr": (38,)}
TASK_NAMES = {"rotation": "Rotation", "jigsaw": "Jigsaw", "simclr": "SimCLR",
              "multitask": "Multi-task (SimCLR + rotation + jigsaw)",
              "adv_simclr": "adversarial SimCLR", "byol": "BYOL (beyond the paper)",
              "barlow_twins": "Barlow Twins (beyond the paper)",
              "moco": "MoCo v2 (beyond the paper)"}
PRETRAIN_NAMES = {"cifar100": "CIFAR-100 train (labels dropped)",
                  "cifar10": "CIFAR-10 train (labels dropped; in-domain, not the paper's CIFAR-100)"}


def published_table3() -> list[tuple[str, str, str]]:
    """Beside Table 3, from the RobustSSL leaderboard (report/leaderboard.py): (method, clean,
    AutoAttack) of three SLF rows, and the range of every published AFF row."""
    from robust_ssl.report.leaderboard import row, rows

    chosen = [row(method, "SLF") for method in ("ACL", "AdvCL", "DynACL++")]
    found = [(f"{r.method} ({r.paper})", f"{r.clean:.1f}", f"{r.autoattack:.1f}") for r in chosen]
    aff = rows("AFF")
    return found + [("any of them, adversarial full fine-tuning",
                     f"{min(r.clean for r in aff):.0f}-{max(r.clean for r in aff):.0f}",
                     f"{min(r.autoattack for r in aff):.0f}-{max(r.autoattack for r in aff):.0f}")]


@dataclass
class Stat:
    """One table entry: a metric of one cell over its seeds, in %."""

    values: list[float]
    examples: int
    failed: list[str] = field(default_factory=list)  # "<run> run, seed s: message"

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def spread(self) -> float:
        """Standard deviation over seeds, or with one seed the binomial standard error."""
        if len(self.values) > 1:
            return statistics.stdev(self.values)
        p = self.mean / 100
        return 100 * math.sqrt(p * (1 - p) / self.examples)

    def text(self) -> str:
        return f"{self.mean:.1f} ± {self.spread:.1f}" + (" †" if self.failed else "")


def load_runs(results: Path, cells: list[grid.Cell], table: str) -> dict[str, Result]:
    """The result of every evaluated cell, by name; one error lists every missing one."""
    runs, missing = {}, []
    for cell in cells:
        if not cell.evaluated:
            continue
        path = results / f"{cell.name}.json"
        if path.is_file():
            runs[cell.name] = read_result(path)
        else:
            missing.append(str(path))
    if missing:
        raise RobustSSLError(f"missing run results: {', '.join(missing)}; run `make {table}` "
                             "(with the same SEEDS) to produce them")
    return runs


def pretraining_data(runs: dict[str, Result], pretrain_data: str) -> str:
    """What the encoders were pretrained on, as their exports recorded it (not the cell name,
    which a folder that happens to be called cifar10 would share); results from before that
    record fall back to the table's PRETRAIN_DATA."""
    recorded = [r.pretraining_set for r in runs.values() if r.pretraining_set is not None]
    dataset = recorded[0] if recorded else pretrain_data
    return PRETRAIN_NAMES.get(dataset, f"image folder '{dataset}'")
