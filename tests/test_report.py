"""The report on hand-made result files: statistics over seeds, the binomial standard error
with one seed, sanity marks, the paper's numbers, and refusals."""

import csv
import json

import pytest
import yaml

from robust_ssl.runs import grid
from robust_ssl.errors import RobustSSLError
from robust_ssl.report.curve import write_curve
from robust_ssl.evaluation.result import read_result, write_result
from robust_ssl.report.results import pretraining_data
from robust_ssl.report.tables import column_colours, write_table

METRICS = ("clean", "fgsm@8/255", "pgd@8/255", "worst@8/255")


def write_results(out, table, seeds, accuracy, examples=1000, failed=None, budgets=((), ())):
    """One JSON per evaluated cell; accuracy(cell) gives every metric of that cell."""
    for cell in grid.cells_of(table, "cifar10", seeds, *budgets):
        if not cell.evaluated:
            (out / cell.name).mkdir(parents=True, exist_ok=True)
            (out / cell.name / "config.yaml").write_text(yaml.safe_dump(
                {"data": {"init_args": {"dataset": "cifar10"}}}))
            continue
        value = accuracy(cell)
        warnings = (failed or {}).get(cell.name, [])
        sweep = {f"{a}@{e}/255": value / (1 + e) for a in ("fgsm", "pgd") for e in (1, 2, 8)}
        (out / f"{cell.name}.json").write_text(json.dumps({
            "seed": cell.seed, "metrics": {m: value for m in METRICS},
            "subsets": {"sweep": sweep}, "examples": {"test": examples},
            "sanity": {"passed": not warnings, "failed": ["x"] * len(warnings),
                       "warnings": warnings},
            "data_source": "'cifar10', image folder (JPG; /data/cifar10)"}))


def test_two_seeds_give_mean_and_standard_deviation(tmp_path):
    write_results(tmp_path, "table1", (0, 1), lambda cell: 0.40 if cell.seed == 0 else 0.50,
                  failed={"supervised-adv-s1": ["FGSM accuracy 0.5 far above PGD 0.1"]})
    text = write_table("table1", tmp_path, "quick", "cifar10", (0, 1))
    assert "mean ± standard deviation over 2 seeds (0, 1)" in text
    row = next(line for line in text.splitlines() if line.startswith("| SimCLR, 10% labels"))
    assert row.count("45.0 ± 7.1") == 8 and "45.0 ± 7.1 (61)" in row  # the paper's clean
    supervised = next(line for line in text.splitlines() if line.startswith("| supervised"))
    assert supervised.count("†") == 4  # the adversarial cell's four columns, and only those
    assert text.count("- supervised (no pretraining), adv run, seed 1: FGSM accuracy 0.5") == 1
    assert "Test data: 'cifar10', image folder (JPG" in text and "CIFAR-10 train" in text
    with open(tmp_path / "table1.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows][1] == "SimCLR, 1% labels"
    assert rows[1]["clean mean"] == "45.00" and rows[1]["clean spread"] == "7.07"
    assert rows[1]["clean seeds"] == "2" and rows[1]["clean paper"] == "58"
    for chart in ("table1.png", "table1_eps.png"):
        assert (tmp_path / chart).stat().st_size > 10_000


def test_one_seed_reports_the_binomial_standard_error(tmp_path):
    write_results(tmp_path, "table2", (0,), lambda cell: 0.45, examples=1000)
    text = write_table("table2", tmp_path, "quick", "cifar10", (0,))
    assert "one seed (0); ± is the binomial standard error" in text
    simclr = next(line for line in text.splitlines() if line.startswith("| SimCLR"))
    assert "45.0 ± 1.6 (38)" in simclr  # sqrt(0.45 * 0.55 / 1000) = 1.57%, paper's 38
    assert "Sanity checks: all passed." in text


def test_missing_results_are_named(tmp_path):
    write_results(tmp_path, "table1", (0,), lambda cell: 0.5)
    (tmp_path / "random-f100-adv-s0.json").unlink()
    with pytest.raises(RobustSSLError, match="random-f100-adv-s0.json.*make table1"):
        write_table("table1", tmp_path, "quick", "cifar10", (0,))
    with pytest.raises(RobustSSLError, match="-s1.json"):  # another seed was never run
        write_table("table1", tmp_path, "quick", "cifar10", (0, 1))


def test_pretraining_data_is_read_from_the_results_not_from_the_cell_name(tmp_path):
    """An image folder that happens to be called cifar10 is not labelled CIFAR-10: the result
    records what the encoder's export recorded; a result from before that record falls back
    to the table's PRETRAIN_DATA."""
    def result(pretraining):
        data = {"seed": 0, "metrics": {}, "examples": {"test": 1}}
        return read_result_of(tmp_path, data | ({} if pretraining == "absent" else
                                                {"pretraining": pretraining}))

    supervised = result(None)  # no pretrained encoder
    folder = result({"pretext": "simclr", "dataset": "/elsewhere/cifar10", "epochs": 1})
    assert pretraining_data({"a": supervised, "b": folder}, "cifar10") == (
        "image folder '/elsewhere/cifar10'")
    assert pretraining_data({"a": result({"dataset": "cifar10"})},
                            "/x/cifar10").startswith("CIFAR-10 train")
    assert pretraining_data({"a": result("absent")}, "cifar100").startswith("CIFAR-100 train")


def read_result_of(folder, data):
    path = folder / f"run{len(list(folder.glob('run*.json')))}.json"
    write_result(path, data)
    return read_result(path)


def test_the_curve_has_a_row_per_budget_the_knn_of_each_export_and_the_papers_row(tmp_path):
    """Supervised budgets that were not run read '–'; the kNN comes from the segment's log."""
    budgets = ((1, 2, 4), (1, 2))

    def accuracy(cell):
        return (0.1 if cell.column.startswith("probe") else 0.2) * int(cell.row) / 4
    write_results(tmp_path, "curve", (0, 1), accuracy, budgets=budgets,
                  failed={"supervised-e2-adv-s1": ["FGSM accuracy 0.5 far above PGD 0.1"]})
    for seed, knn in ((0, 0.30), (1, 0.40)):
        log = tmp_path / f"simclr-cifar10-e4-s{seed}/logs/pretrain/metrics.csv"
        log.parent.mkdir(parents=True)
        log.write_text(f"epoch,knn/acc,knn/epoch,step\n,0.1,3,30\n,{knn},4,40\n2,,,40\n")
    text = write_curve(tmp_path, "quick", "cifar10", (0, 1), *budgets)
    rows = {line.split(" | ")[0]: line.split(" | ") for line in text.splitlines()
            if line.startswith("| ")}
    assert rows["| 4"][1] == "35.0 ± 7.1"  # kNN of the two seeds, in %
    assert rows["| 1"][1] == "–"  # no log: not shown as a number
    assert rows["| 4"][2] == "10.0 ± 0.0" and rows["| 4"][8] == "–"  # no 4-epoch supervised
    assert rows["| 2"][8] == "10.0 ± 0.0"
    assert rows["| 2"][11].startswith("10.0 ± 0.0 †")
    paper = rows["| paper (SimCLR 100, supervised 50 epochs)"]
    assert paper[2:4] == ["63", "35"] and paper[4] == "–" and paper[8:10] == ["68", "23"]
    assert "- 2 epochs, supervised, FGSM-trained, seed 1: FGSM accuracy 0.5" in text
    assert "Matched budgets" in text and "CIFAR-10 train" in text
    with open(tmp_path / "curve.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [r["epochs"] for r in csv_rows] == ["1", "2", "4"]
    assert csv_rows[2]["kNN mean"] == "35.00" and csv_rows[2]["supervised: clean seeds"] == "0"
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_table3_has_a_column_per_policy_and_metric_and_the_published_numbers(tmp_path):
    write_results(tmp_path, "table3", (0,), lambda cell: 0.2 if cell.row == "adv_simclr" else 0.1)
    text = write_table("table3", tmp_path, "quick", "cifar10", (0,))
    header = next(line for line in text.splitlines() if line.startswith("| |"))
    for policy in ("SLF", "ALF", "AFF", "AFF-TRADES"):
        for metric in ("clean", "FGSM", "PGD-20", "worst case"):
            assert f"{metric}, {policy}" in header
    assert "AutoAttack" not in header  # no run measured it
    adversarial = next(line for line in text.splitlines() if line.startswith("| adversarial"))
    assert adversarial.count("20.0 ± 1.3") == 16
    assert "ACL (Jiang et al., NeurIPS 2020) 78.2 / 39.2" in text and "in parentheses" not in text
    with open(tmp_path / "table3.csv") as f:
        assert [row["row"] for row in csv.DictReader(f)] == ["SimCLR", "adversarial SimCLR"]


def test_every_bar_column_has_its_own_colour():
    """Table 3's sixteen columns: no colour repeats (matplotlib's default cycle has ten), and
    tables of up to ten columns keep tab10's colours."""
    import matplotlib.pyplot as plt

    colours = column_colours(16)
    assert len(set(colours)) == 16
    assert colours[:10] == list(plt.get_cmap("tab10").colors)


def write_robustssl_results(out, seeds=(0,), encoders=(), kind="generated", autoattack=False):
    """Every evaluated robustssl cell's JSON and records: adversarial SimCLR right on 60 of 100
    images under PGD-20 where SimCLR is on 40 (the same images, nested), corruptions alike."""
    import numpy as np

    from robust_ssl.evaluation.result import write_records

    images = np.arange(100)
    for cell in grid.cells_of("robustssl", "cifar10", seeds, encoders=encoders):
        if not cell.evaluated:
            continue
        robust = 0.6 if cell.row == "adv_simclr" else 0.4
        right = images < 100 * robust
        every = np.ones(100, dtype=bool)
        records = {"clean": (every, images < 80), "pgd@8/255": (every, right),
                   "fgsm@8/255": (every, right)}
        corrupted = {f"corruption/fog/{s}": (every, right) for s in range(1, 6)}
        metrics = {"clean": 0.8, "pgd@8/255": robust, "fgsm@8/255": robust,
                   "worst@8/255": robust, "corruption/mean": robust}
        if autoattack:
            metrics["autoattack@8/255"] = robust
        write_result(out / f"{cell.name}.json", {
            "run": cell.name, "seed": cell.seed, "metrics": metrics, "subsets": {},
            "examples": {"test": 100}, "sanity": {"passed": True, "failed": [], "warnings": []},
            "data_source": "'cifar10', image folder (JPG; /data/cifar10)",
            "pretraining": {"pretext": "external", "layout": "acl"} if cell.row == "acl" else
            {"pretext": cell.row, "dataset": "cifar10"},
            "corruptions": {"kind": kind, "source": f"{kind} corruptions", "paired": True,
                            "images": 100, "evaluated": ["fog"], "skipped": {},
                            "mean": robust}})
        write_records(out / f"{cell.name}.json", records, images, corrupted, images)


def test_the_robustssl_table_puts_our_rows_beside_the_leaderboard(tmp_path):
    from robust_ssl.report.robustssl import write_robustssl

    (tmp_path / "ACL.pt").write_bytes(b"x")
    acl = grid.parse_encoder(f"acl={tmp_path / 'ACL.pt'}")
    write_robustssl_results(tmp_path, encoders=(acl,))
    text = write_robustssl(tmp_path, "quick", "cifar10", (0,), (acl,), grid.ROBUSTSSL_OURS)
    header = next(line for line in text.splitlines() if line.startswith("| |"))
    for policy in ("SLF", "ALF", "AFF"):
        for metric in ("clean", "PGD-20", "corruptions"):
            assert f"{metric}, {policy}" in header
    assert "AutoAttack" not in header  # no run measured it
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ")]
    assert rows[2:5] == ["| SimCLR", "| adversarial SimCLR", "| acl (imported, acl layout)"]
    assert "Corruptions: generated corruptions; mean accuracy over 1 corruptions" in text
    # adversarial SimCLR - SimCLR: 20 points on nested images, an interval that excludes 0
    difference = next(line for line in text.splitlines()
                      if line.startswith("| adversarial SimCLR | PGD-20"))
    assert difference.count("+20.0") == 3 and difference.count("holds") == 3
    corruptions = next(line for line in text.splitlines()
                       if line.startswith("| adversarial SimCLR | corruptions"))
    assert corruptions.count("+20.0") == 3
    published = text.partition("## The published leaderboard")[2]
    assert "| DynACL-AIR++ | Xu et al., NeurIPS 2023 (AIR) | AFF | 82.36 | 50.79 | 73.56 |" in published
    assert published.count("| SLF |") == 11 and published.count("| AFF |") == 10
    with open(tmp_path / "robustssl.csv") as f:
        assert [row["row"] for row in csv.DictReader(f)] == [
            "SimCLR", "adversarial SimCLR", "acl (imported, acl layout)"]
    assert (tmp_path / "robustssl.png").stat().st_size > 10_000


def test_the_robustssl_table_shows_autoattack_and_never_mixes_corruption_sources(tmp_path):
    from robust_ssl.evaluation.result import read_result
    from robust_ssl.report.robustssl import write_robustssl

    write_robustssl_results(tmp_path, autoattack=True)
    text = write_robustssl(tmp_path, "paper", "cifar10", (0,), (), grid.ROBUSTSSL_OURS)
    assert "AutoAttack, AFF" in text
    mixed = tmp_path / "simclr-cifar10-robustssl-alf-s0.json"
    data = read_result(mixed).data
    data["corruptions"]["kind"] = "published"
    write_result(mixed, data)
    with pytest.raises(RobustSSLError, match="different sources.*never mixes"):
        write_robustssl(tmp_path, "paper", "cifar10", (0,), (), grid.ROBUSTSSL_OURS)
