"""The experiment grid: every table as a list of cells, the one description that both the
table recipes (`make table1` runs `python -m robust_ssl.grid table1 ...`) and the report read.

A cell is one run directory `<results>/<name>`: a pretraining (it leaves `encoder.pt`) or a
fine-tuning followed by its evaluation (it leaves `<name>.json`). Cells are listed so that
each comes after the cells it reads. Adding a label fraction, a row or a table is editing
this file; the runner and the report follow.

    python -m robust_ssl.grid table1 --profile quick --results results/quick \
        --data-dir data --pretrain-data cifar10 --seeds 0 1
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FRACTIONS = {"1%": 0.01, "10%": 0.1, "30%": 0.3, "100%": 1.0}
TRAININGS = ("clean", "adv")  # without and with on-the-fly FGSM examples
TABLE2_TASKS = ("rotation", "jigsaw", "simclr", "multitask")
TABLE2_FRACTION = "30%"
DEFAULT_SEEDS = {"paper": (0, 1, 2), "quick": (0,), "smoke": (0,)}


@dataclass(frozen=True)
class Cell:
    """One run. `row` and `column` place its result in the report; `encoder` names the
    pretraining cell whose encoder.pt it fine-tunes (None: random weights)."""

    name: str
    stage: str  # pretrain | finetune | supervised
    seed: int
    overrides: tuple[str, ...] = ()
    task: str | None = None
    encoder: str | None = None
    row: str | None = None
    column: str | None = None

    @property
    def evaluated(self) -> bool:
        return self.stage != "pretrain"


def pretrain_name(pretrain_data: str) -> str:
    """The name cells use for the pretraining data: an image folder given by its path gets
    names of its own (folder-<name>), never those of cifar10 or cifar100."""
    return f"folder-{Path(pretrain_data).name}" if "/" in pretrain_data else pretrain_data


def pretraining(task: str, pretrain: str, seed: int) -> Cell:
    return Cell(f"{task}-{pretrain}-s{seed}", "pretrain", seed, task=task)


def fine_tuning(task: str, pretrain: str, seed: int, fraction: str, training: str,
                freeze: str = "linear", row: str | None = None,
                column: str | None = None) -> Cell:
    """A linear probe (or partial fine-tuning) of a pretrained encoder on a label fraction."""
    kind = "" if freeze == "linear" else f"-{freeze}"
    return Cell(f"{task}-{pretrain}-f{fraction.rstrip('%')}{kind}-{training}-s{seed}",
                "finetune", seed,
                overrides=(f"data.fraction={FRACTIONS[fraction]}",
                           f"model.adversarial={str(training == 'adv').lower()}",
                           f"model.freeze={freeze}"),
                encoder=pretraining(task, pretrain, seed).name, row=row, column=column)


def table1(pretrain: str, seeds: tuple[int, ...]) -> list[Cell]:
    """SimCLR probes at four label fractions, the supervised baseline trained from scratch,
    and the same probe on an untrained encoder; each clean and with FGSM examples."""
    cells = []
    for seed in seeds:
        cells.append(pretraining("simclr", pretrain, seed))
        for training in TRAININGS:
            adversarial = f"model.adversarial={str(training == 'adv').lower()}"
            cells.append(Cell(f"supervised-{training}-s{seed}", "supervised", seed,
                              overrides=(adversarial,), row="supervised", column=training))
            cells += [fine_tuning("simclr", pretrain, seed, fraction, training, row=fraction,
                                  column=training) for fraction in FRACTIONS]
            cells.append(Cell(f"random-f100-{training}-s{seed}", "finetune", seed,
                              overrides=("data.fraction=1.0", adversarial,
                                         "model.encoder_path=null"),
                              row="random encoder", column=training))
    return cells


def table2(pretrain: str, seeds: tuple[int, ...]) -> list[Cell]:
    """Each pretext task's encoder on 30% of the labels with FGSM examples: partial
    adversarial fine-tuning (the paper's Table 2) and the adversarial linear probe. SimCLR's
    probe is Table 1's cell, so it is reused, not rerun."""
    cells = []
    for seed in seeds:
        for task in TABLE2_TASKS:
            cells += [pretraining(task, pretrain, seed)]
            cells += [fine_tuning(task, pretrain, seed, TABLE2_FRACTION, "adv", freeze,
                                  row=task, column=freeze) for freeze in ("partial", "linear")]
    return cells


TABLES = {"table1": table1, "table2": table2}


def cells_of(table: str, pretrain_data: str, seeds: tuple[int, ...]) -> list[Cell]:
    return TABLES[table](pretrain_name(pretrain_data), tuple(seeds))


def command(cell: Cell, args: argparse.Namespace, table: str) -> list[str]:
    """The `python -m robust_ssl.run` call of one cell."""
    results = Path(args.results)
    data_sets = ["data.resize=true"] if args.resize else []
    call = [sys.executable, "-m", "robust_ssl.run", cell.stage, "--profile", args.profile,
            "--data-dir", args.data_dir, "--run-dir", str(results / cell.name),
            "--group", f"{table}-{args.profile}", "--seed", str(cell.seed)]
    sets = list(data_sets) + list(cell.overrides)
    if cell.stage == "pretrain":
        call += ["--task", cell.task]
        sets.append(f"data.dataset={args.pretrain_data}")
    if cell.encoder is not None:
        sets.append(f"model.encoder_path={results / cell.encoder / 'encoder.pt'}")
    if cell.evaluated:
        call += ["--evaluate-output", str(results / f"{cell.name}.json")]
        call += [part for item in data_sets for part in ("--evaluate-set", item)]
    call += [part for item in sets for part in ("--set", item)]
    if args.restart:
        call.append("--restart")
    if args.wandb:
        call += ["--wandb", args.wandb]
    return call


def run_table(args: argparse.Namespace) -> int:
    """Run every cell in order, each in a process of its own (run.py skips those whose result
    is up to date); stop at the first that fails, with its exit status."""
    cells = cells_of(args.table, args.pretrain_data, seeds_of(args))
    for number, cell in enumerate(cells, 1):
        print(f"[{number}/{len(cells)}] {cell.name}", flush=True)
        status = subprocess.call(command(cell, args, args.table))
        if status != 0:
            return status
    return 0


def seeds_of(args: argparse.Namespace) -> tuple[int, ...]:
    return tuple(args.seeds) if args.seeds else DEFAULT_SEEDS.get(args.profile, (0,))


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed {value} is negative: seeds are 0, 1, 2, ...")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m robust_ssl.grid",
                                description=__doc__.splitlines()[0])
    p.add_argument("table", choices=sorted(TABLES))
    p.add_argument("--profile", required=True)
    p.add_argument("--results", required=True, help="the profile's results directory")
    p.add_argument("--data-dir", default="data")
    p.add_argument("--pretrain-data", default="cifar100")
    p.add_argument("--seeds", type=non_negative, nargs="*",
                   help="default: 0 1 2 for the paper profile, 0 otherwise")
    p.add_argument("--resize", action="store_true")
    p.add_argument("--restart", action="store_true")
    p.add_argument("--wandb", choices=("offline", "online", "off"))
    return p


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_table(parser().parse_args(argv)))


if __name__ == "__main__":
    main()
