"""Tables and charts built only from the run JSONs, beside the paper's numbers.

    python -m robust_ssl.report table1 --results results/quick --pretrain cifar10 --profile quick

writes table1.md, table1.csv and table1.png (likewise table2) into the results directory,
prints the table, and (unless --wandb off) logs it to W&B as a wandb.Table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from robust_ssl.errors import RobustSSLError
from robust_ssl.tracking import MODES, wandb_mode

EPS = "8/255"
# Table 1 of the paper, accuracy %: clean, FGSM, clean after adversarial fine-tuning, FGSM after.
PAPER_TABLE1 = {
    "supervised": (68, 23, 66, 36),
    "1%": (58, 26, 49, 29),
    "10%": (61, 32, 60, 36),
    "30%": (63, 33, 62, 38),
    "100%": (63, 35, 62, 40),
}
# Table 2 of the paper: FGSM accuracy % after adversarial fine-tuning on 30% of the labels.
PAPER_TABLE2 = {"rotation": 25, "jigsaw": 29, "simclr": 38}
TABLE2_TASKS = {"rotation": "Rotation", "jigsaw": "Jigsaw", "simclr": "SimCLR",
                "multitask": "Multi-task (SimCLR + rotation + jigsaw)"}
COLUMNS = [  # (header, which run, metric, index into the paper's row or None)
    ("clean", "clean", "clean", 0),
    ("FGSM", "clean", f"fgsm@{EPS}", 1),
    ("PGD-20", "clean", f"pgd@{EPS}", None),
    ("clean, adv. FT", "adv", "clean", 2),
    ("FGSM, adv. FT", "adv", f"fgsm@{EPS}", 3),
    ("PGD-20, adv. FT", "adv", f"pgd@{EPS}", None),
]
PRETRAIN_NAMES = {"cifar100": "CIFAR-100 train (labels dropped)",
                  "cifar10": "CIFAR-10 train (labels dropped; in-domain, not the paper's CIFAR-100)"}


def pretraining_data(results: Path, task: str, pretrain: str) -> str:
    """What the encoder was pretrained on, read from its run's config (not from the cell
    name, which a folder that happens to be called cifar10 would share)."""
    config = results / f"{task}-{pretrain}" / "config.yaml"
    dataset = pretrain
    if config.is_file():
        dataset = yaml.safe_load(config.read_text())["data"]["init_args"]["dataset"]
    return PRETRAIN_NAMES.get(dataset, f"image folder '{dataset}'")


@dataclass
class Row:
    label: str
    run_prefix: str  # the JSONs are <prefix>-clean.json and <prefix>-adv.json


def table1_rows(pretrain: str) -> list[Row]:
    rows = [Row("supervised", "supervised")]
    rows += [Row(f"{f}%", f"simclr-{pretrain}-f{f}") for f in (1, 10, 30, 100)]
    rows.append(Row("random encoder", "random-f100"))
    return rows


def load_results(results: Path, rows: list[Row]) -> dict[str, dict]:
    found, missing = {}, []
    for row in rows:
        for mode in ("clean", "adv"):
            path = results / f"{row.run_prefix}-{mode}.json"
            if path.is_file():
                found[f"{row.run_prefix}-{mode}"] = json.loads(path.read_text())
            else:
                missing.append(str(path))
    if missing:
        raise RobustSSLError(f"missing run results: {', '.join(missing)}; run `make table1` "
                             "to produce them")
    return found


def table_cells(rows: list[Row], runs: dict[str, dict]) -> list[list[tuple[float, int | None]]]:
    """Per row, per column: (our accuracy in %, the paper's number or None)."""
    table = []
    for row in rows:
        paper = PAPER_TABLE1.get(row.label)
        cells = []
        for _, mode, metric, paper_index in COLUMNS:
            ours = 100 * runs[f"{row.run_prefix}-{mode}"]["metrics"][metric]
            cells.append((ours, paper[paper_index] if paper and paper_index is not None else None))
        table.append(cells)
    return table


def write_table1(results: Path, pretrain: str, profile: str) -> str:
    rows = table1_rows(pretrain)
    runs = load_results(results, rows)
    cells = table_cells(rows, runs)
    pretrain_name = pretraining_data(results, "simclr", pretrain)
    any_run = next(iter(runs.values()))
    test_examples = any_run["examples"]["test"]
    title = (f"Table 1: CIFAR-10 accuracy (%), ours (paper), profile `{profile}`, "
             f"SimCLR pretrained on {pretrain_name}")
    header = "| labeled data | " + " | ".join(c[0] for c in COLUMNS) + " |"
    lines = [f"# {title}", "", header, "|" + " --- |" * (len(COLUMNS) + 1)]
    for row, row_cells in zip(rows, cells):
        shown = [f"{ours:.1f} ({paper})" if paper is not None else f"{ours:.1f}"
                 for ours, paper in row_cells]
        lines.append(f"| {row.label} | " + " | ".join(shown) + " |")
    warnings = [f"- {name}: {w}" for name, run in sorted(runs.items())
                for w in run["sanity"]["warnings"]]
    lines += ["", f"Attacks at ε = {EPS} (L∞) on {test_examples} CIFAR-10 test images; FGSM as in "
              "the paper, PGD-20 with α = 2/255 and a random start. 'adv. FT' = fine-tuned with "
              "on-the-fly FGSM examples. Rows 1%–100%: linear probe on the SimCLR encoder; "
              "random encoder: the same probe on an untrained encoder (100% of labels); "
              "supervised: ResNet-18 trained from scratch on 100% of labels.", "",
              "Sanity checks: " + ("all passed." if not warnings else "")]
    lines += warnings
    text = "\n".join(lines) + "\n"
    (results / "table1.md").write_text(text)
    with open(results / "table1.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["labeled_data"] + [h for c in COLUMNS for h in (c[0], f"{c[0]} (paper)")])
        for row, row_cells in zip(rows, cells):
            writer.writerow([row.label] + [v for ours, paper in row_cells
                                           for v in (f"{ours:.2f}", "" if paper is None else paper)])
    plot_table1(results / "table1.png", rows, cells, title)
    return text


def write_table2(results: Path, pretrain: str, profile: str) -> str:
    """Rows: pretext tasks; columns: clean, FGSM and PGD-20 after adversarial linear
    fine-tuning on 30% of the labels; FGSM beside the paper's number."""
    runs = {}
    missing = []
    for task in TABLE2_TASKS:
        path = results / f"{task}-{pretrain}-f30-adv.json"
        if path.is_file():
            runs[task] = json.loads(path.read_text())
        else:
            missing.append(str(path))
    if missing:
        raise RobustSSLError(f"missing run results: {', '.join(missing)}; run `make table2` "
                             "to produce them")
    pretrain_name = pretraining_data(results, "simclr", pretrain)
    title = (f"Table 2: CIFAR-10 accuracy (%) after adversarial linear fine-tuning on 30% of "
             f"the labels, ours (paper), profile `{profile}`, pretrained on {pretrain_name}")
    headers = ["clean", "FGSM", "PGD-20"]
    metrics = ["clean", f"fgsm@{EPS}", f"pgd@{EPS}"]
    lines = [f"# {title}", "", "| pretext task | " + " | ".join(headers) + " |",
             "|" + " --- |" * (len(headers) + 1)]
    csv_rows = [["pretext_task"] + headers + ["FGSM (paper)"]]
    for task, label in TABLE2_TASKS.items():
        values = [100 * runs[task]["metrics"][m] for m in metrics]
        paper = PAPER_TABLE2.get(task)
        shown = [f"{v:.1f}" for v in values]
        if paper is not None:
            shown[1] += f" ({paper})"
        lines.append(f"| {label} | " + " | ".join(shown) + " |")
        csv_rows.append([label] + [f"{v:.2f}" for v in values] + ["" if paper is None else paper])
    test_examples = next(iter(runs.values()))["examples"]["test"]
    warnings = [f"- {task}: {w}" for task, run in runs.items() for w in run["sanity"]["warnings"]]
    lines += ["", f"Attacks at ε = {EPS} (L∞) on {test_examples} CIFAR-10 test images. The "
              "paper reports only the FGSM column.", "",
              "Sanity checks: " + ("all passed." if not warnings else "")] + warnings
    text = "\n".join(lines) + "\n"
    (results / "table2.md").write_text(text)
    with open(results / "table2.csv", "w", newline="") as f:
        csv.writer(f).writerows(csv_rows)
    plot_table2(results / "table2.png", csv_rows, title)
    return text


def plot_table2(path: Path, csv_rows: list[list], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    header, rows = csv_rows[0], csv_rows[1:]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.25
    for k, column in enumerate(header[1:4]):
        xs = [r + (k - 1) * width for r in range(len(rows))]
        ax.bar(xs, [float(row[1 + k]) for row in rows], width, label=column)
    paper = [(r, float(row[4])) for r, row in enumerate(rows) if row[4] != ""]
    ax.scatter(*zip(*paper), marker="_", s=300, color="black", zorder=3, label="paper (FGSM)")
    ax.set_xticks(range(len(rows)), [row[0].split(" (")[0] for row in rows])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_table1(path: Path, rows: list[Row], cells, title: str) -> None:
    """Grouped bars of our four paper columns per row, the paper's numbers as black ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [i for i, column in enumerate(COLUMNS) if column[3] is not None]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(shown)
    for k, column_index in enumerate(shown):
        xs = [r + (k - (len(shown) - 1) / 2) * width for r in range(len(rows))]
        ours = [row_cells[column_index][0] for row_cells in cells]
        ax.bar(xs, ours, width, label=COLUMNS[column_index][0])
        paper = [(x, row_cells[column_index][1]) for x, row_cells in zip(xs, cells)
                 if row_cells[column_index][1] is not None]
        if paper:
            ax.scatter(*zip(*paper), marker="_", s=200, color="black", zorder=3,
                       label="paper" if k == 0 else None)
    ax.set_xticks(range(len(rows)), [row.label for row in rows])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, ncol=3)
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
    parser.add_argument("table", choices=["table1", "table2"])
    parser.add_argument("--results", required=True)
    parser.add_argument("--pretrain", default="cifar100")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--wandb", choices=MODES, default=None,
                        help="offline (default, or $WANDB), online or off")
    args = parser.parse_args(argv)
    results = Path(args.results)
    try:
        mode = wandb_mode(args.wandb)
        write = write_table1 if args.table == "table1" else write_table2
        text = write(results, args.pretrain, args.profile)
    except RobustSSLError as error:
        print(f"robust-ssl: error: {error}", file=sys.stderr)
        sys.exit(2)
    if mode != "off":
        log_to_wandb(results, args.table, f"{args.table}-{args.profile}", mode)
    print(text)


if __name__ == "__main__":
    main()
