"""`make robustssl`'s table: each encoder under the RobustSSL benchmark's SLF, ALF and AFF
(runs/grid.py's `robustssl` cells), clean / PGD-20 / AutoAttack (where the profile runs it) /
mean corruption accuracy, our rows (mean ± spread over seeds) then the published leaderboard
(report/leaderboard.py), clearly apart; and the paired bootstrap of every row against the first
of this suite's encoders under each policy (report/claims.py's machinery). robustssl.md,
.csv, .png (clean against robust accuracy per policy, ours beside the leaderboard).
"""

from __future__ import annotations

from pathlib import Path

from robust_ssl.errors import RobustSSLError
from robust_ssl.evaluation.result import CORRUPTION_MEAN, Result, key
from robust_ssl.report import leaderboard
from robust_ssl.report.claims import Claim, Comparison, Records, Side, judge
from robust_ssl.report.results import (TABLE_EPS, TASK_NAMES, load_runs, pretraining_data)
from robust_ssl.report.tables import Column, entries, markdown, notes_for, write_csv
from robust_ssl.runs import grid

METRICS = (("clean", "clean"), ("PGD-20", key("pgd", TABLE_EPS)),
           ("AutoAttack", key("autoattack", TABLE_EPS)), ("corruptions", CORRUPTION_MEAN))


def columns(runs: dict[str, Result]) -> list[Column]:
    """Clean, PGD-20, AutoAttack and the corruption mean under each policy; a metric that not
    every run has (AutoAttack off a profile that skips it) is left out."""
    shown = [(header, metric) for header, metric in METRICS
             if all(metric in run.metrics for run in runs.values())]
    return [Column(f"{header}, {policy}", policy, metric)
            for policy in grid.ROBUSTSSL_POLICIES for header, metric in shown]


def corruption_source(runs: dict[str, Result]) -> str | None:
    """The one corruption source of every run; published and generated mixed is an error."""
    found = {name: run.corruptions for name, run in runs.items() if run.corruptions}
    kinds = {summary["kind"] for summary in found.values()}
    if len(kinds) > 1:
        by_kind = {kind: sorted(n for n, s in found.items() if s["kind"] == kind) for kind in kinds}
        raise RobustSSLError(
            "the cells' corruptions come from different sources ("
            + "; ".join(f"{kind}: {', '.join(names[:3])}" for kind, names in sorted(by_kind.items()))
            + "), which one table never mixes: evaluate them again with one source, e.g. "
            "RESTART=1 after putting CIFAR-10-C in DATA_DIR (or removing it)")
    if not found:
        return None
    summary = next(iter(found.values()))
    skipped = "".join(f"; {name} not evaluated: {why}" for name, why in summary["skipped"].items())
    paired = "" if summary["paired"] else (" (not the test images' own copies: unpaired with "
                                           "the clean column)")
    return (f"Corruptions: {summary['source']}{paired}; mean accuracy over "
            f"{len(summary['evaluated'])} corruptions × severities 1-5 on {summary['images']} "
            f"images{skipped}.")


def epochs_run(results: Path, cells: list[grid.Cell]) -> str:
    """The epochs each policy's cells trained (their config.yaml), beside the protocol's 25:
    a profile's cut shows in the table, not only in the docs."""
    import yaml

    found: dict[str, set] = {}
    for cell in cells:
        config = results / cell.name / "config.yaml"
        if cell.evaluated and config.is_file():
            epochs = (yaml.safe_load(config.read_text()) or {}).get("trainer", {}).get("max_epochs")
            found.setdefault(cell.column, set()).add(epochs)
    shown = ", ".join(f"{policy} {'/'.join(str(e) for e in sorted(found[policy], key=str))}"
                      for policy in grid.ROBUSTSSL_POLICIES if policy in found)
    return f"Epochs trained: {shown} (the benchmark: 25 each)." if shown else ""


def row_labels(cells: list[grid.Cell], runs: dict[str, Result]) -> dict[str, str]:
    labels = {}
    for cell in cells:
        if cell.evaluated and cell.row not in labels:
            pretraining = runs[cell.name].data.get("pretraining") or {}
            layout = pretraining.get("layout")
            labels[cell.row] = (f"{cell.row} (imported, {layout} layout)" if layout
                                else TASK_NAMES.get(cell.row, cell.row))
    return labels


def published_lines() -> list[str]:
    lines = ["## The published leaderboard (not run here)", "",
             f"From {leaderboard.SOURCE}: ResNet-18 encoders pretrained on CIFAR-10 for about "
             "1,000 epochs, fine-tuned as above, the full test set, standard AutoAttack at "
             "8/255, corruptions = CIFAR-10-C.", "",
             "| method | paper | policy | clean | AutoAttack | corruptions | note |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in leaderboard.ROWS:
        corrupt = "-" if r.corruptions is None else f"{r.corruptions:.2f}"
        lines.append(f"| {r.method} | {r.paper} | {r.policy} | {r.clean:.2f} | "
                     f"{r.autoattack:.2f} | {corrupt} | {r.note} |")
    return lines


def comparisons(results: Path, cells: list[grid.Cell], labels: dict[str, str],
                settings: list[tuple[str, str]]) -> list[str]:
    """Every row against the first row (this suite's first encoder, SimCLR by default): a
    claim per row of three comparisons (one per policy, Bonferroni within), paired bootstrap
    over test images at each setting."""
    sides: dict[Side, list[grid.Cell]] = {}
    for cell in cells:
        if cell.evaluated:
            sides.setdefault(Side("robustssl", cell.row, cell.column), []).append(cell)
    rows = list(labels)
    if len(rows) < 2:
        return []
    records = Records(results, sides)
    reference = rows[0]
    lines = ["## Paired differences against " + labels[reference], "",
             f"Each row minus {labels[reference]} under each policy, in accuracy points: paired "
             "bootstrap over test images (seeds resampled per cell), at 1 - 0.05/3 per "
             "comparison (Bonferroni over the three policies); holds = the row is above, "
             "contradicted = below, else inconclusive.", "",
             "| row | setting | " + " | ".join(grid.ROBUSTSSL_POLICIES) + " |",
             "| --- | --- |" + " --- |" * len(grid.ROBUSTSSL_POLICIES)]
    for row in rows[1:]:
        claim = Claim(row, f"{row} above {reference}", tuple(
            Comparison(Side("robustssl", row, policy), (Side("robustssl", reference, policy),))
            for policy in grid.ROBUSTSSL_POLICIES))
        for header, setting in settings:
            judged = judge(claim, records, setting, {})["comparisons"]
            shown = [(f"{100 * c['estimate']:+.1f} [{100 * c['low']:+.1f}, "
                      f"{100 * c['high']:+.1f}] {c['verdict']}") if "low" in c else c["verdict"]
                     for c in judged]
            lines.append(f"| {labels[row]} | {header} | " + " | ".join(shown) + " |")
    return [""] + lines


def chart(path: Path, labels: dict[str, str], table: dict, robust: str, title: str) -> None:
    """Per policy: clean against robust accuracy (`robust`: AutoAttack where it ran, else
    PGD-20), our rows with their spread, the leaderboard's as grey crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(grid.ROBUSTSSL_POLICIES), figsize=(15, 4.6), sharey=True)
    colours = plt.get_cmap("tab10").colors
    for axis, policy in zip(axes, grid.ROBUSTSSL_POLICIES):
        published = leaderboard.rows(policy)
        axis.scatter([r.clean for r in published], [r.autoattack for r in published],
                     marker="x", color="grey", label="leaderboard (AutoAttack)")
        for r in published:
            axis.annotate(r.method, (r.clean, r.autoattack), fontsize=6, color="grey",
                          xytext=(2, 2), textcoords="offset points")
        for colour, (row, label) in zip(colours, labels.items()):
            clean, attacked = table[row, f"clean, {policy}"], table[row, f"{robust}, {policy}"]
            axis.errorbar(clean.mean, attacked.mean, xerr=clean.spread, yerr=attacked.spread,
                          marker="o", color=colour, capsize=2, label=f"{label} ({robust})")
        axis.set_title(policy)
        axis.set_xlabel("clean accuracy (%)")
        axis.set_xlim(0, 100)
        axis.set_ylim(0, 60)
    axes[0].set_ylabel("robust accuracy at 8/255 (%)")
    axes[-1].legend(fontsize=6, loc="upper left")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_robustssl(results: Path, profile: str, pretrain_data: str, seeds: tuple[int, ...],
                    encoders: tuple[grid.External, ...], ours: tuple[str, ...]) -> str:
    cells = grid.cells_of("robustssl", pretrain_data, seeds, profile=profile, encoders=encoders,
                          ours=ours)
    runs = load_runs(results, cells, "robustssl")
    if not runs:
        raise RobustSSLError("the robustssl table has no rows: name encoders with ENCODERS=... "
                             "or keep this suite's (OURS, default simclr adv_simclr)")
    labels = row_labels(cells, runs)
    shown = columns(runs)
    table = entries(cells, runs, list(labels), shown)
    title = (f"The RobustSSL benchmark's protocol: CIFAR-10 accuracy (%) under SLF, ALF and AFF, "
             f"profile `{profile}`")
    corruptions = corruption_source(runs)
    headers = {column.header.partition(",")[0] for column in shown}
    ours_on = pretraining_data(runs, pretrain_data)
    notes = notes_for(runs, seeds, f"{ours_on} (this suite's rows; an imported encoder as its "
                      "own code pretrained it, which its file does not record)", paper=False)
    notes += ["SLF = standard linear fine-tuning, ALF = adversarial linear fine-tuning (PGD-10 "
              "examples), AFF = adversarial full fine-tuning (TRADES, β = 6, TRADES-10), with "
              "the benchmark's optimiser, schedule, batch and augmentation "
              "(experiments/protocols/robustssl/; docs/beyond/robustssl.md lists every "
              "value, its source and this suite's deviations). The last epoch's classifier, "
              "as the benchmark keeps. "
              + epochs_run(results, cells)]
    notes += [corruptions] if corruptions else []
    text = markdown(title, labels, shown, table, {}, notes)
    settings = [(header, metric) for header, metric in METRICS if header in headers]
    text += "\n".join(comparisons(results, cells, labels, settings)) + "\n\n"
    text += "\n".join(published_lines()) + "\n"
    (results / "robustssl.md").write_text(text)
    write_csv(results / "robustssl.csv", labels, shown, table, {})
    robust = "AutoAttack" if "AutoAttack" in headers else "PGD-20"
    chart(results / "robustssl.png", labels, table, robust, title)
    return text
