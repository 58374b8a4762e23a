"""The pretraining-budget curve (`make curve`): its table, CSV and chart, read from the run
JSONs of the grid's curve cells (grid.curve) and the kNN accuracy each pretraining segment
logged.

The question: is the quick Table 1's inversion of the paper's claim (SimCLR probes less robust
than the supervised baseline) a matter of pretraining budget? Each row is a budget in epochs
over the training images: SimCLR pretrained that long, then Table 1's 100%-label linear probe,
clean and with FGSM examples; beside it the supervised ResNet-18 trained from scratch for the
same number of epochs, clean and with FGSM examples.

    python -m robust_ssl.report curve --results results/quick --profile quick \
        --pretrain-data cifar10 [--epochs 1 2 4 8 16] [--supervised-epochs 1 2 4]
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from robust_ssl.evaluation.result import Result, key
from robust_ssl.report.results import EPS, PAPER_TABLE1, TABLE_EPS, Stat, load_runs, pretraining_data
from robust_ssl.runs import grid

SERIES = {"probe-clean": "SimCLR probe", "probe-adv": "SimCLR probe, FGSM-trained",
          "supervised-clean": "supervised", "supervised-adv": "supervised, FGSM-trained"}
METRICS = {"clean": "clean", "FGSM": key("fgsm", TABLE_EPS), "PGD-20": key("pgd", TABLE_EPS)}
# The paper's Table 1 numbers and the budgets they come from: SimCLR pretrained 100 epochs,
# probed on 100% of the labels; the supervised baseline trained 50 epochs.
PAPER = {"probe-clean": (100, {"clean": PAPER_TABLE1["100%"][0], "FGSM": PAPER_TABLE1["100%"][1]}),
         "probe-adv": (100, {"clean": PAPER_TABLE1["100%"][2], "FGSM": PAPER_TABLE1["100%"][3]}),
         "supervised-clean": (50, {"clean": PAPER_TABLE1["supervised"][0],
                                   "FGSM": PAPER_TABLE1["supervised"][1]}),
         "supervised-adv": (50, {"clean": PAPER_TABLE1["supervised"][2],
                                 "FGSM": PAPER_TABLE1["supervised"][3]})}
BUDGET = ("budget = epochs over the training images: SimCLR's pretraining epochs (then a linear "
          "probe on its encoder), or the supervised baseline's training epochs from scratch")


def knn_accuracy(run_dir: Path, epoch: int) -> float | None:
    """The kNN accuracy that the segment's KNNMonitor logged after `epoch` epochs."""
    for log in sorted(run_dir.glob("logs/pretrain/metrics.csv")):
        with open(log) as f:
            for row in csv.DictReader(f):
                if row.get("knn/acc") and row.get("knn/epoch") == str(epoch):
                    return float(row["knn/acc"])
    return None


def entries(cells: list[grid.Cell], runs: dict[str, Result], epochs: list[int]
            ) -> dict[tuple[int, str, str], Stat]:
    """(epochs, series, metric) -> Stat over the seeds, for the budgets a series ran."""
    table = {}
    for epoch in epochs:
        for series in SERIES:
            chosen = [runs[c.name] for c in cells if c.row == str(epoch) and c.column == series]
            for metric, metric_key in METRICS.items():
                if chosen:
                    table[epoch, series, metric] = Stat(
                        [100 * r.metrics[metric_key] for r in chosen],
                        min(r.test_examples for r in chosen),
                        [f"seed {r.seed}: {w}" for r in chosen for w in r.warnings])
    return table


def knn_entries(results: Path, cells: list[grid.Cell]) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}
    for cell in cells:
        if cell.stage == "pretrain":
            accuracy = knn_accuracy(results / cell.name, int(cell.row))
            if accuracy is not None:
                found.setdefault(int(cell.row), []).append(100 * accuracy)
    return found


def headers() -> list[tuple[str, str, str]]:
    return [(f"{SERIES[s]}: {m}", s, m) for s in SERIES for m in METRICS]


def markdown(title: str, epochs: list[int], table: dict, knn: dict[int, list[float]],
             notes: list[str]) -> str:
    columns = headers()
    lines = [f"# {title}", "", "| epochs | kNN | " + " | ".join(h for h, _, _ in columns) + " |",
             "|" + " --- |" * (len(columns) + 2)]
    for epoch in epochs:
        shown = [knn_text(knn.get(epoch))]
        shown += [table[epoch, s, m].text() if (epoch, s, m) in table else "–"
                  for _, s, m in columns]
        lines.append(f"| {epoch} | " + " | ".join(shown) + " |")
    paper = [str(PAPER[s][1].get(m, "–")) for _, s, m in columns]
    lines.append("| paper (SimCLR 100, supervised 50 epochs) | – | " + " | ".join(paper) + " |")
    flagged = sorted({f"- {epoch} epochs, {SERIES[series]}, {message}"
                      for (epoch, series, _), stat in table.items() for message in stat.failed})
    for note in notes:
        lines += ["", note]
    lines += ["", "Sanity checks: " + ("all passed." if not flagged else
                                       "† marks the entries of runs that failed one:")]
    return "\n".join(lines + flagged) + "\n"


def knn_text(values: list[float] | None) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"


def write_csv(path: Path, epochs: list[int], table: dict, knn: dict[int, list[float]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epochs", "kNN mean"] + [f"{h} {part}" for h, _, _ in headers()
                                                  for part in ("mean", "spread", "seeds",
                                                               "flagged")])
        for epoch in epochs:
            values = knn.get(epoch)
            row = [epoch, f"{statistics.fmean(values):.2f}" if values else ""]
            for _, series, metric in headers():
                stat = table.get((epoch, series, metric))
                row += (["", "", 0, ""] if stat is None else
                        [f"{stat.mean:.2f}", f"{stat.spread:.2f}", len(stat.values),
                         "yes" if stat.failed else ""])
            writer.writerow(row)


def chart(path: Path, epochs: list[int], table: dict, knn: dict[int, list[float]],
          title: str) -> None:
    """Clean, FGSM and PGD-20 accuracy against the budget (log axis): SimCLR probes solid,
    supervised baselines dashed, kNN dotted, the paper's numbers as crosses at their budgets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import ScalarFormatter

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharex=True, sharey=True)
    colours = dict(zip(SERIES, plt.get_cmap("tab10").colors))
    for ax, metric in zip(axes, METRICS):
        for series, label in SERIES.items():
            points = [(e, table[e, series, metric]) for e in epochs if (e, series, metric) in table]
            if points:
                ax.errorbar([e for e, _ in points], [s.mean for _, s in points],
                            yerr=[s.spread for _, s in points], marker="o", capsize=2,
                            color=colours[series], label=label,
                            linestyle="--" if series.startswith("supervised") else "-")
            budget, paper = PAPER[series]
            if metric in paper:
                ax.scatter([budget], [paper[metric]], marker="x", s=60, color=colours[series],
                           label=f"paper: {label}")
        if metric == "clean" and knn:
            ax.plot(sorted(knn), [statistics.fmean(knn[e]) for e in sorted(knn)], ":",
                    color="grey", marker=".", label="kNN (SimCLR encoder)")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.set_xlabel("budget (epochs over the training images)")
        ax.set_title(metric if metric == "clean" else f"{metric} at ε = {EPS}")
    axes[0].set_ylabel("accuracy (%)")
    axes[0].set_ylim(0, 100)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"{title}\n{BUDGET}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_curve(results: Path, profile: str, pretrain_data: str, seeds: tuple[int, ...],
                epochs: tuple[int, ...], supervised_epochs: tuple[int, ...]) -> str:
    cells = grid.cells_of("curve", pretrain_data, seeds, epochs, supervised_epochs)
    runs = load_runs(results, cells, "curve")
    budgets = sorted({int(c.row) for c in cells})
    table, knn = entries(cells, runs, budgets), knn_entries(results, cells)
    any_run = next(iter(runs.values()))
    examples = any_run.test_examples
    spread = (f"mean ± standard deviation over {len(seeds)} seeds" if len(seeds) > 1 else
              f"one seed ({seeds[0]}); ± is the binomial standard error on {examples} test "
              "images")
    title = f"Pretraining-budget curve: CIFAR-10 accuracy (%), profile `{profile}`"
    notes = [f"Accuracy % ({spread}). Attacks at ε = {EPS} (L∞): FGSM as in the paper, PGD-20 "
             "with step ε/4 and a random start. kNN: weighted 200-NN accuracy of the SimCLR "
             "features (the pretraining's monitor).",
             f"Matched budgets: {BUDGET}. SimCLR is one run with a constant learning rate whose "
             "encoder is exported at each budget (so a longer curve continues a shorter one); "
             "each supervised budget is a run of its own, its learning rate annealed to zero. "
             "Probes: Table 1's 100%-label linear probe.",
             f"Test data: {any_run.data_source or 'not recorded'}. SimCLR pretrained on "
             f"{pretraining_data(runs, pretrain_data)}."]
    text = markdown(title, budgets, table, knn, notes)
    (results / "curve.md").write_text(text)
    write_csv(results / "curve.csv", budgets, table, knn)
    chart(results / "curve.png", budgets, table, knn, title)
    return text
