"""Tables 1-3 and their charts, built only from the results of a table's cells (runs/grid.py),
beside the paper's numbers: <table>.md, <table>.csv, <table>.png (bars with error bars) and
<table>_eps.png (robust accuracy against ε, one curve per cell). Each number is the mean over
the seeds with its standard deviation; with one seed, the binomial standard error of the
test-set estimate stands in its place. A cell whose runs failed a sanity check carries a dagger.
"""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from pathlib import Path

from robust_ssl.evaluation.result import Result, budgets, eps_value, key
from robust_ssl.report.results import (EPS, PAPER_TABLE1, PAPER_TABLE2, TABLE_EPS, TASK_NAMES,
                                       Stat, load_runs, pretraining_data, published_table3)
from robust_ssl.runs import grid


@dataclass(frozen=True)
class Column:
    header: str
    cell_column: str  # which cell of the row (grid.Cell.column)
    metric: str
    paper: int | None = None  # index into the paper's row


TABLE1_COLUMNS = [
    Column("clean", "clean", "clean", 0), Column("FGSM", "clean", key("fgsm", TABLE_EPS), 1),
    Column("PGD-20", "clean", key("pgd", TABLE_EPS)), Column("worst case", "clean", key("worst", TABLE_EPS)),
    Column("clean, adv. FT", "adv", "clean", 2), Column("FGSM, adv. FT", "adv", key("fgsm", TABLE_EPS), 3),
    Column("PGD-20, adv. FT", "adv", key("pgd", TABLE_EPS)),
    Column("worst case, adv. FT", "adv", key("worst", TABLE_EPS)),
]
TABLE2_COLUMNS = [
    Column("clean, partial", "partial", "clean"), Column("FGSM, partial", "partial", key("fgsm", TABLE_EPS), 0),
    Column("PGD-20, partial", "partial", key("pgd", TABLE_EPS)),
    Column("worst case, partial", "partial", key("worst", TABLE_EPS)),
    Column("clean, linear", "linear", "clean"), Column("FGSM, linear", "linear", key("fgsm", TABLE_EPS)),
    Column("PGD-20, linear", "linear", key("pgd", TABLE_EPS)),
]

def table3_columns(with_autoattack: bool) -> list[Column]:
    """Clean, FGSM, PGD-20, AutoAttack (when the profile ran it) and worst case under each
    fine-tuning policy."""
    metrics = [("clean", "clean"), ("FGSM", key("fgsm", TABLE_EPS)), ("PGD-20", key("pgd", TABLE_EPS))]
    metrics += [("AutoAttack", key("autoattack", TABLE_EPS))] if with_autoattack else []
    metrics += [("worst case", key("worst", TABLE_EPS))]
    return [Column(f"{header}, {policy}", policy, metric)
            for policy in grid.POLICIES for header, metric in metrics]


def entries(cells: list[grid.Cell], runs: dict[str, Result], rows: list[str],
            columns: list[Column]) -> dict[tuple[str, str], Stat]:
    """(row, column header) -> Stat over the seeds."""
    table = {}
    for row in rows:
        for column in columns:
            chosen = [c for c in cells if c.row == row and c.column == column.cell_column]
            results = [runs[c.name] for c in chosen]
            table[row, column.header] = Stat(
                [100 * r.metrics[column.metric] for r in results],
                min(r.test_examples for r in results),
                [f"{column.cell_column} run, seed {r.seed}: {w}" for r in results
                 for w in r.warnings])
    return table


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


def convention(runs: dict[str, Result]) -> str:
    """How the runs' ε bounds an image (results before the field existed: pixel space)."""
    spaces = {run.data.get("eps_space", "pixel") for run in runs.values()}
    names = {"pixel": "on [0, 1] pixels", "normalized": "on the normalised input"}
    return " / ".join(names.get(space, space) for space in sorted(spaces))


def notes_for(runs: dict[str, Result], seeds: tuple[int, ...], pretrained_on: str,
              paper: bool = True) -> list[str]:
    any_run = next(iter(runs.values()))
    autoattack = any(key("autoattack", TABLE_EPS) in run.metrics for run in runs.values())
    examples = any_run.test_examples
    spread = (f"mean ± standard deviation over {len(seeds)} seeds ({', '.join(map(str, seeds))})"
              if len(seeds) > 1 else
              f"one seed ({seeds[0]}); ± is the binomial standard error of an accuracy measured "
              f"on {examples} test images")
    return [f"Accuracy % ({spread})" + ("; the paper's number in parentheses" if paper else "")
            + f". Attacks at ε = {EPS} (L∞, {convention(runs)}) on {examples} test images: "
            "FGSM as in the paper, "
            "PGD-20 with step ε/4 and a random start"
            + (", standard AutoAttack on a subset" if autoattack else "")
            + "; worst case = an image counts only if no attack at ε broke it.",
            f"Test data: {any_run.data_source or 'not recorded'}. Encoders pretrained on "
            f"{pretrained_on}."]


def write_table(table_name: str, results: Path, profile: str, pretrain_data: str,
                seeds: tuple[int, ...]) -> str:
    cells = grid.cells_of(table_name, pretrain_data, seeds, profile=profile)
    runs = load_runs(results, cells, table_name)
    pretrained_on = pretraining_data(runs, pretrain_data)
    if table_name == "table3":
        row_labels = {task: TASK_NAMES[task] for task in grid.TABLE3_TASKS}
        columns, paper = table3_columns(all(key("autoattack", TABLE_EPS) in run.metrics
                                            for run in runs.values())), {}
        title = (f"Table 3: CIFAR-10 accuracy (%) of standard and adversarial SimCLR encoders "
                 f"under four fine-tuning policies, 100% of the labels, profile `{profile}`")
        extra = ["SLF = standard linear fine-tuning (the clean 100% probe of Table 1); ALF = "
                 "adversarial linear fine-tuning (training examples: FGSM only); AFF = "
                 "adversarial full fine-tuning (PGD, steps of ε/4, every layer trained); "
                 "AFF-TRADES = the same with the TRADES loss, CE + 6·KL(clean ‖ adversarial), "
                 "and its KL-raising adversary (beyond the paper). "
                 "Adversarial SimCLR: PGD against NT-Xent during pretraining, ACL's dual "
                 "BatchNorm (robust_ssl/pretrain/adversarial_simclr.py); the same pretraining "
                 "budget as SimCLR's.",
                 "Published for comparison (the RobustSSL benchmark's leaderboard: ResNet-18, "
                 "CIFAR-10, ε = 8/255, about 1,000 pretraining epochs on CIFAR-10; SLF clean / "
                 "AutoAttack; `make robustssl` runs its protocol): "
                 + "; ".join(f"{name} {clean} / {auto}" for name, clean, auto in published_table3())
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
        row_labels = {task: TASK_NAMES[task] for task in grid.TABLE2_ROWS}
        columns, paper = TABLE2_COLUMNS, PAPER_TABLE2
        title = (f"Table 2: CIFAR-10 accuracy (%) after adversarial fine-tuning on "
                 f"{grid.TABLE2_FRACTION} of the labels, profile `{profile}`, ours (paper)")
        extra = ["'partial' = partial adversarial fine-tuning as in the paper (stem and the "
                 "first two residual stages frozen: the first 10 conv layers; the rest and the "
                 "prediction layer trained with FGSM examples); 'linear' = adversarial linear "
                 "probe. The paper reports only the partial FGSM column. BYOL, Barlow Twins "
                 "and MoCo v2 are beyond the paper: the same views (SimCLR's), encoder, "
                 "budget and policy, their own objective (robust_ssl/pretrain/)."]
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
    """A distinct colour per column: tab10's ten, then their light variants (Table 3 has sixteen
    columns, and the default cycle would repeat the first two)."""
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab20").colors
    colours = list(palette[::2] + palette[1::2])
    if count > len(colours):
        raise ValueError(f"{count} columns: a bar chart has {len(colours)} distinct colours")
    return colours[:count]


def epsilon_points(cells: list[grid.Cell], runs: dict[str, Result],
                   row_labels: dict[str, str]) -> list[dict]:
    """Robust accuracy (%) against ε (/255), one series per cell (mean over seeds), on each
    run's ε-sweep subset, at the budgets both FGSM and PGD-20 ran (not the large-ε masking
    check): {attack, row, column, series, eps, accuracy} per point."""
    points = []
    columns = sorted({c.column for c in cells if c.evaluated})
    for attack in ("fgsm", "pgd"):
        for row, label in row_labels.items():
            for column in columns:
                chosen = [runs[c.name] for c in cells if c.row == row and c.column == column
                          and c.name in runs]
                if not chosen:
                    continue
                sweep = [r.sweep for r in chosen]
                shared = [e for e in budgets(sweep[0], attack)
                          if all(key(a, eps_value(e)) in s for s in sweep for a in ("fgsm", "pgd"))]
                for e in shared:
                    points.append({"attack": attack, "row": row, "column": column,
                                   "series": f"{label}, {column}", "eps": 255 * eps_value(e),
                                   "accuracy": 100 * statistics.fmean(
                                       s[key(attack, eps_value(e))] for s in sweep)})
    return points


def epsilon_curves(path: Path, cells: list[grid.Cell], runs: dict[str, Result],
                   row_labels: dict[str, str], title: str) -> None:
    """epsilon_points as a chart (FGSM and PGD-20 side by side; colour = row, line style =
    column) and as `<path stem>.csv`, the data of W&B's line plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = epsilon_points(cells, runs, row_labels)
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["attack", "row", "column", "series", "eps",
                                               "accuracy"])
        writer.writeheader()
        writer.writerows(points)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    columns = sorted({c.column for c in cells if c.evaluated})
    styles = dict(zip(columns, ("-", "--", ":", "-.")))
    colours = dict(zip(row_labels, plt.get_cmap("tab10").colors))
    for ax, attack in zip(axes, ("fgsm", "pgd")):
        series = dict.fromkeys(p["series"] for p in points if p["attack"] == attack)
        for name in series:
            line = [p for p in points if p["attack"] == attack and p["series"] == name]
            ax.plot([p["eps"] for p in line], [p["accuracy"] for p in line], marker="o",
                    color=colours[line[0]["row"]], linestyle=styles[line[0]["column"]],
                    label=name)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ε (/255)")
        ax.set_title({"fgsm": "FGSM", "pgd": "PGD-20"}[attack])
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


