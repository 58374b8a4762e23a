"""Tables and charts built only from the run JSONs of a table's cells (grid.py), beside the
paper's numbers.

    python -m robust_ssl.report table1 --results results/quick --profile quick \
        --pretrain-data cifar10 --seeds 0 1

(`curve` is the pretraining-budget curve, written by curve.py.)

writes <table>.md, <table>.csv, <table>.png (bars with error bars) and <table>_eps.png
(robust accuracy against ε, one curve per cell) into the results directory, prints the table,
and (unless --wandb off) logs it to W&B as a wandb.Table. Each number is the mean over the
seeds with its standard deviation; with one seed, the binomial standard error of the test-set
estimate stands in its place. A cell whose runs failed a sanity check carries a dagger.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from robust_ssl import grid
from robust_ssl.errors import RobustSSLError
from robust_ssl.tracking import MODES, wandb_mode

EPS = "8/255"
# Table 1 of the paper, accuracy %: clean, FGSM, clean after adversarial fine-tuning, FGSM after.
PAPER_TABLE1 = {"supervised": (68, 23, 66, 36), "1%": (58, 26, 49, 29), "10%": (61, 32, 60, 36),
                "30%": (63, 33, 62, 38), "100%": (63, 35, 62, 40)}
# Table 2 of the paper: FGSM accuracy % after partial adversarial fine-tuning on 30% of labels
# (one-number rows, indexed like Table 1's).
PAPER_TABLE2 = {"rotation": (25,), "jigsaw": (29,), "simclr": (38,)}
TASK_NAMES = {"rotation": "Rotation", "jigsaw": "Jigsaw", "simclr": "SimCLR",
              "multitask": "Multi-task (SimCLR + rotation + jigsaw)",
              "adv_simclr": "adversarial SimCLR"}
PRETRAIN_NAMES = {"cifar100": "CIFAR-100 train (labels dropped)",
                  "cifar10": "CIFAR-10 train (labels dropped; in-domain, not the paper's CIFAR-100)"}


@dataclass(frozen=True)
class Column:
    header: str
    cell_column: str  # which cell of the row (grid.Cell.column)
    metric: str
    paper: int | None = None  # index into the paper's row


TABLE1_COLUMNS = [
    Column("clean", "clean", "clean", 0), Column("FGSM", "clean", f"fgsm@{EPS}", 1),
    Column("PGD-20", "clean", f"pgd@{EPS}"), Column("worst case", "clean", f"worst@{EPS}"),
    Column("clean, adv. FT", "adv", "clean", 2), Column("FGSM, adv. FT", "adv", f"fgsm@{EPS}", 3),
    Column("PGD-20, adv. FT", "adv", f"pgd@{EPS}"),
    Column("worst case, adv. FT", "adv", f"worst@{EPS}"),
]
TABLE2_COLUMNS = [
    Column("clean, partial", "partial", "clean"), Column("FGSM, partial", "partial", f"fgsm@{EPS}", 0),
    Column("PGD-20, partial", "partial", f"pgd@{EPS}"),
    Column("worst case, partial", "partial", f"worst@{EPS}"),
    Column("clean, linear", "linear", "clean"), Column("FGSM, linear", "linear", f"fgsm@{EPS}"),
    Column("PGD-20, linear", "linear", f"pgd@{EPS}"),
]

# Published, ResNet-18 on CIFAR-10, ε = 8/255, pretraining on CIFAR-10 (RobustSSL benchmark, as
# quoted in issue 12): (method, linear probe clean, AutoAttack; full adversarial fine-tuning).
PUBLISHED_TABLE3 = [("ACL (Jiang et al. 2020)", "78.2", "39.2"),
                    ("AdvCL (Fan et al. 2021)", "82.4", "43.2"),
                    ("DynACL++ (Luo et al. 2023)", "79.8", "46.5"),
                    ("any of them, adversarial full fine-tuning", "81-83", "about 50")]


def table3_columns(with_autoattack: bool) -> list[Column]:
    """Clean, FGSM, PGD-20, AutoAttack (when the profile ran it) and worst case under each
    fine-tuning policy."""
    metrics = [("clean", "clean"), ("FGSM", f"fgsm@{EPS}"), ("PGD-20", f"pgd@{EPS}")]
    metrics += [("AutoAttack", f"autoattack@{EPS}")] if with_autoattack else []
    metrics += [("worst case", f"worst@{EPS}")]
    return [Column(f"{header}, {policy}", policy, metric)
            for policy in grid.POLICIES for header, metric in metrics]


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


def load_runs(results: Path, cells: list[grid.Cell], table: str) -> dict[str, dict]:
    runs, missing = {}, []
    for cell in cells:
        if not cell.evaluated:
            continue
        path = results / f"{cell.name}.json"
        if path.is_file():
            runs[cell.name] = json.loads(path.read_text())
        else:
            missing.append(str(path))
    if missing:
        raise RobustSSLError(f"missing run results: {', '.join(missing)}; run `make {table}` "
                             "(with the same SEEDS) to produce them")
    return runs


def entries(cells: list[grid.Cell], runs: dict[str, dict], rows: list[str],
            columns: list[Column]) -> dict[tuple[str, str], Stat]:
    """(row, column header) -> Stat over the seeds."""
    table = {}
    for row in rows:
        for column in columns:
            chosen = [c for c in cells if c.row == row and c.column == column.cell_column]
            results = [runs[c.name] for c in chosen]
            table[row, column.header] = Stat(
                [100 * r["metrics"][column.metric] for r in results],
                min(r["examples"]["test"] for r in results),
                [f"{column.cell_column} run, seed {r['seed']}: {w}" for r in results
                 for w in r["sanity"]["warnings"]])
    return table


def pretraining_data(results: Path, cells: list[grid.Cell], pretrain_data: str) -> str:
    """What the encoders were pretrained on, read from a pretraining run's config (not from
    the cell name, which a folder that happens to be called cifar10 would share)."""
    dataset = pretrain_data
    for cell in cells:
        config = results / cell.name / "config.yaml"
        if cell.stage == "pretrain" and config.is_file():
            dataset = yaml.safe_load(config.read_text())["data"]["init_args"]["dataset"]
            break
    return PRETRAIN_NAMES.get(dataset, f"image folder '{dataset}'")


def markdown(title: str, row_labels: dict[str, str], columns: list[Column],
             table: dict[tuple[str, str], Stat], paper: dict, notes: list[str]) -> str:
    lines = [f"# {title}", "", "| | " + " | ".join(c.header for c in columns) + " |",
             "|" + " --- |" * (len(columns) + 1)]
    for row, label in row_labels.items():
        shown = []
        for column in columns:
            text = table[row, column.header].text()
            reference = paper.get(row)
            if column.paper is not None and reference is not None:
                text += f" ({reference[column.paper]})"
            shown.append(text)
        lines.append(f"| {label} | " + " | ".join(shown) + " |")
    flagged = sorted({f"- {row_labels[row]}, {message}"
                      for (row, _), stat in table.items() for message in stat.failed})
    for note in notes:
        lines += ["", note]
    lines += ["", "Sanity checks: " + ("all passed." if not flagged else
                                       "† marks the entries of runs that failed one:")]
    return "\n".join(lines + flagged) + "\n"


def write_csv(path: Path, row_labels: dict[str, str], columns: list[Column],
              table: dict[tuple[str, str], Stat], paper: dict) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row"] + [f"{c.header} {part}" for c in columns
                                   for part in ("mean", "spread", "seeds", "paper", "flagged")])
        for row, label in row_labels.items():
            values = []
            for column in columns:
                stat, reference = table[row, column.header], paper.get(row)
                reference = ("" if column.paper is None or reference is None
                             else reference[column.paper])
                values += [f"{stat.mean:.2f}", f"{stat.spread:.2f}", len(stat.values),
                           reference, "yes" if stat.failed else ""]
            writer.writerow([label] + values)


def notes_for(runs: dict[str, dict], seeds: tuple[int, ...], pretrained_on: str,
              paper: bool = True) -> list[str]:
    any_run = next(iter(runs.values()))
    autoattack = any(f"autoattack@{EPS}" in run["metrics"] for run in runs.values())
    examples = any_run["examples"]["test"]
    spread = (f"mean ± standard deviation over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
              if len(seeds) > 1 else
              f"one seed ({seeds[0]}); ± is the binomial standard error of an accuracy measured "
              f"on {examples} test images")
    return [f"Accuracy % ({spread})" + ("; the paper's number in parentheses" if paper else "")
            + f". Attacks at ε = {EPS} (L∞) on {examples} test images: FGSM as in the paper, "
            "PGD-20 with step ε/4 and a random start"
            + (", standard AutoAttack on a subset" if autoattack else "")
            + "; worst case = an image counts only if no attack at ε broke it.",
            f"Test data: {any_run.get('data_source') or 'not recorded'}. Encoders pretrained on "
            f"{pretrained_on}."]


def write_table(table_name: str, results: Path, profile: str, pretrain_data: str,
                seeds: tuple[int, ...]) -> str:
    cells = grid.cells_of(table_name, pretrain_data, seeds, profile=profile)
    runs = load_runs(results, cells, table_name)
    pretrained_on = pretraining_data(results, cells, pretrain_data)
    if table_name == "table3":
        row_labels = {task: TASK_NAMES[task] for task in grid.TABLE3_TASKS}
        columns, paper = table3_columns(all(f"autoattack@{EPS}" in run["metrics"]
                                            for run in runs.values())), {}
        title = (f"Table 3: CIFAR-10 accuracy (%) of standard and adversarial SimCLR encoders "
                 f"under three fine-tuning policies, 100% of the labels, profile `{profile}`")
        extra = ["SLF = standard linear fine-tuning (the clean 100% probe of Table 1); ALF = "
                 "adversarial linear fine-tuning (training examples: FGSM only); AFF = "
                 "adversarial full fine-tuning (PGD, steps of ε/4, every layer trained). "
                 "Adversarial SimCLR: PGD against NT-Xent during pretraining, ACL's dual "
                 "BatchNorm (robust_ssl/pretrain/adversarial_simclr.py); the same pretraining "
                 "budget as SimCLR's.",
                 "Published for comparison (ResNet-18, CIFAR-10, ε = 8/255, about 1,000 "
                 "pretraining epochs on CIFAR-10; linear probe clean / AutoAttack): "
                 + "; ".join(f"{name} {clean} / {auto}" for name, clean, auto in PUBLISHED_TABLE3)
                 + "."]
    elif table_name == "table1":
        row_labels = {"supervised": "supervised (no pretraining)",
                      **{f: f"SimCLR, {f} labels" for f in grid.FRACTIONS},
                      "random encoder": "random encoder, 100% labels"}
        columns, paper = TABLE1_COLUMNS, PAPER_TABLE1
        title = (f"Table 1: CIFAR-10 accuracy (%), profile `{profile}`, ours (paper)")
        extra = ["'adv. FT' = fine-tuned with on-the-fly FGSM examples. SimCLR rows: linear "
                 "probe; random encoder: the same probe on an untrained encoder; supervised: "
                 "ResNet-18 trained from scratch."]
    else:
        row_labels = {task: TASK_NAMES[task] for task in grid.TABLE2_TASKS}
        columns, paper = TABLE2_COLUMNS, PAPER_TABLE2
        title = (f"Table 2: CIFAR-10 accuracy (%) after adversarial fine-tuning on "
                 f"{grid.TABLE2_FRACTION} of the labels, profile `{profile}`, ours (paper)")
        extra = ["'partial' = partial adversarial fine-tuning as in the paper (stem and the "
                 "first two residual stages frozen: the first 10 conv layers; the rest and the "
                 "prediction layer trained with FGSM examples); 'linear' = adversarial linear "
                 "probe. The paper reports only the partial FGSM column."]
    table = entries(cells, runs, list(row_labels), columns)
    text = markdown(title, row_labels, columns, table, paper,
                    notes_for(runs, seeds, pretrained_on, paper=bool(paper)) + extra)
    (results / f"{table_name}.md").write_text(text)
    write_csv(results / f"{table_name}.csv", row_labels, columns, table, paper)
    bars(results / f"{table_name}.png", row_labels, columns, table, paper, title)
    epsilon_curves(results / f"{table_name}_eps.png", cells, runs, row_labels, title)
    return text


def bars(path: Path, row_labels: dict[str, str], columns: list[Column],
         table: dict[tuple[str, str], Stat], paper: dict, title: str) -> None:
    """Grouped bars per row with error bars (std over seeds, or binomial SE), the paper's
    numbers as black ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4.8))
    width = 0.8 / len(columns)
    for k, (column, colour) in enumerate(zip(columns, column_colours(len(columns)))):
        xs = [r + (k - (len(columns) - 1) / 2) * width for r in range(len(row_labels))]
        stats = [table[row, column.header] for row in row_labels]
        ax.bar(xs, [s.mean for s in stats], width, yerr=[s.spread for s in stats], capsize=2,
               label=column.header, color=colour)
        if column.paper is not None:
            ticks = [(x, paper[row][column.paper]) for x, row in zip(xs, row_labels)
                     if row in paper]
            if ticks:
                ax.scatter(*zip(*ticks), marker="_", s=200, color="black", zorder=3,
                           label="paper" if column.paper == 0 else None)
    ax.set_xticks(range(len(row_labels)), [label.split(",")[0] if len(label) > 24 else label
                                           for label in row_labels.values()], fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def column_colours(count: int) -> list[tuple[float, float, float]]:
    """A distinct colour per column: tab10's ten, then their light variants (Table 3 has twelve
    columns, and the default cycle would repeat the first two)."""
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab20").colors
    colours = list(palette[::2] + palette[1::2])
    if count > len(colours):
        raise ValueError(f"{count} columns: a bar chart has {len(colours)} distinct colours")
    return colours[:count]


def epsilon_curves(path: Path, cells: list[grid.Cell], runs: dict[str, dict],
                   row_labels: dict[str, str], title: str) -> None:
    """Robust accuracy against ε, FGSM and PGD-20 side by side, one curve per cell (mean over
    seeds; colour = row, line style = column), measured on each run's ε-sweep subset, at the
    budgets both attacks ran (not the large-ε masking check)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    columns = sorted({c.column for c in cells if c.evaluated})
    styles = dict(zip(columns, ("-", "--", ":", "-.")))
    colours = dict(zip(row_labels, plt.get_cmap("tab10").colors))
    for ax, attack in zip(axes, ("fgsm", "pgd")):
        for row, label in row_labels.items():
            for column in columns:
                chosen = [runs[c.name] for c in cells if c.row == row and c.column == column]
                if not chosen:
                    continue
                sweep = [r.get("subsets", {}).get("sweep", r["metrics"]) for r in chosen]
                budgets = sorted({k.split("@")[1] for k in sweep[0] if k.startswith(attack + "@")},
                                 key=lambda e: float(e.split("/")[0]))
                budgets = [e for e in budgets
                           if all(f"{a}@{e}" in s for s in sweep for a in ("fgsm", "pgd"))]
                if not budgets:
                    continue
                means = [100 * statistics.fmean(s[f"{attack}@{e}"] for s in sweep)
                         for e in budgets]
                ax.plot([float(e.split("/")[0]) for e in budgets], means, marker="o",
                        color=colours[row], linestyle=styles[column], label=f"{label}, {column}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ε (/255)")
        ax.set_title({"fgsm": "FGSM", "pgd": "PGD-20"}[attack])
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def log_to_wandb(results: Path, name: str, group: str, mode: str) -> None:
    """The finished table as a wandb.Table in its own run of the table's group."""
    import wandb

    with open(results / f"{name}.csv") as f:
        data = list(csv.reader(f))
    run = wandb.init(project="robust-ssl", group=group, name=name, job_type="report",
                     dir=str(results), mode="online" if mode == "online" else "offline")
    run.log({name: wandb.Table(columns=data[0], data=data[1:])})
    run.finish()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m robust_ssl.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(grid.TABLES))
    parser.add_argument("--results", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--pretrain-data", default="cifar100")
    parser.add_argument("--seeds", type=grid.non_negative, nargs="*",
                        help="default: the profile's (as for the grid)")
    grid.add_budget_arguments(parser)
    parser.add_argument("--wandb", choices=MODES, default=None,
                        help="offline (default, or $WANDB), online or off")
    args = parser.parse_args(argv)
    results = Path(args.results)
    try:
        mode = wandb_mode(args.wandb)
        if args.table == "curve":
            from robust_ssl.curve import write_curve  # it builds on this module

            text = write_curve(results, args.profile, args.pretrain_data, grid.seeds_of(args),
                               *grid.epochs_of(args))
        else:
            text = write_table(args.table, results, args.profile, args.pretrain_data,
                               grid.seeds_of(args))
    except RobustSSLError as error:
        print(f"robust-ssl: error: {error}", file=sys.stderr)
        sys.exit(2)
    if mode != "off":
        log_to_wandb(results, args.table, f"{args.table}-{args.profile}", mode)
    print(text)


if __name__ == "__main__":
    main()
