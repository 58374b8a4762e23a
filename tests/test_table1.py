"""`make table1` and `make table2` with PROFILE=smoke end to end on generated data, the first
killed and resumed, the second reusing the first's cells; the Makefile's checks of its
variables."""

import csv
import hashlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import write_image_folder
from robust_ssl.runs import grid
from tests.test_slurm import metrics
from tests.wandb_records import offline_runs

ROOT = Path(__file__).resolve().parents[1]
KILL_SEED = 2026  # the moments of the kills, into each stage
ROWS = ["supervised (no pretraining)", "SimCLR, 1% labels", "SimCLR, 10% labels",
        "SimCLR, 30% labels", "SimCLR, 100% labels", "random encoder, 100% labels"]


def make_table1(data: Path, results: Path, wandb: str, *extra: str):
    command = ["make", "--no-print-directory", "-C", str(ROOT), "table1", "PROFILE=smoke",
               f"DATA_DIR={data}", f"RESULTS={results}", f"WANDB={wandb}", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def finished_results(out: Path) -> dict[Path, tuple[int, str]]:
    """Every finished result (encoders, classifiers, result JSONs) with its time stamp and hash."""
    paths = [*out.glob("*/encoder.pt"), *out.glob("*/classifier.ckpt"), *out.glob("*.json")]
    return {p: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths}


def started(out: Path, stage: str) -> bool:
    """Whether a stage is under way: its config is written and its result is not there yet."""
    if stage == "pretraining":  # past its first epoch's checkpoint
        cell = out / "simclr-cifar100-s0"
        return (cell / "checkpoints/last.ckpt").exists() and not (cell / "encoder.pt").exists()
    if stage == "fine-tuning":
        return any(not (c.parent / "classifier.ckpt").exists() for c in out.glob("*-f*/config.yaml"))
    return any(not c.parent.with_suffix(".json").exists() for c in out.glob("*/evaluate.yaml"))


@pytest.mark.slow
def test_smoke_table_killed_at_any_stage_resumes_and_reuses_finished_cells(smoke_table1, tmp_path):
    """kill -9 anywhere: SIGKILL of make, the grid and both running cells (JOBS=2; nothing can
    clean up) at a seeded random moment into pretraining, fine-tuning and evaluation; each
    rerun carries on, finished results are reused byte for byte, the table's metrics are byte
    for byte an uninterrupted run's, and no partial file or lock is left. One seed: a second
    doubled the test's cost (CI), and the statistics over seeds are the report's
    (test_report.py, on hand-made results)."""
    table_data, reference = smoke_table1
    results = tmp_path / "results"
    out = results / "smoke"
    kept: dict[Path, tuple[int, str]] = {}
    moments = random.Random(KILL_SEED)
    for stage in ("pretraining", "fine-tuning", "evaluation"):
        process = make_table1(table_data, results, "off", "JOBS=2")
        deadline = time.time() + 600
        while not started(out, stage) and process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(moments.uniform(0, 1.5))
        assert process.poll() is None, f"the table ended before {stage}: " + process.communicate()[0][-3000:]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        kept.update(finished_results(out))
    assert not (out / "table1.md").exists()

    second = make_table1(table_data, results, "offline", "JOBS=2")
    log = second.communicate(timeout=900)[0]
    assert second.returncode == 0, log[-3000:]
    assert finished_results(out).items() >= kept.items(), "a finished result was recomputed"
    assert metrics(results) == metrics(reference)  # as if it had never been killed
    assert not list(results.rglob("*.partial")) and not list(results.rglob("*.lock"))
    results_of = {p.stem: json.loads(p.read_text()) for p in out.glob("*-s0.json")}
    assert len(results_of) == 12
    for result in results_of.values():  # the smoke profile covers the ε sweep and worst case
        assert {"worst@8/255", "fgsm@2/255", "pgd@2/255"} <= set(result["metrics"])
        assert result["examples"]["sweep_subset"] > 0
    for classifier in out.glob("*/classifier.ckpt"):
        assert "state_dict" in torch.load(classifier, weights_only=True)

    table = (out / "table1.md").read_text()
    assert "CIFAR-100 train" in table and "one seed (0)" in table
    with open(out / "table1.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["row"] for row in rows] == ROWS
    for row in rows:
        means = [float(v) for h, v in row.items() if h.endswith(" mean")]
        assert len(means) == 8 and all(0 <= v <= 100 for v in means)
        assert {v for h, v in row.items() if h.endswith(" seeds")} == {"1"}
        supervised = [c for c in ("clean", "adv") if row["row"].startswith("supervised")]
        for column in supervised:  # the row's number is its result JSON's, in %
            clean = results_of[f"supervised-{column}-s0"]["metrics"]["clean"]
            header = "clean" if column == "clean" else "clean, adv. FT"
            assert float(row[f"{header} mean"]) == pytest.approx(100 * clean, abs=0.01)
    for chart in ("table1.png", "table1_eps.png"):
        assert (out / chart).stat().st_size > 10_000
    assert list((out).glob("wandb/offline-run-*")), "the table was not logged to W&B"

    # Table 2 reuses Table 1's SimCLR encoder and its 30% adversarial cell
    reused = out / "simclr-cifar100-f30-adv-s0.json"
    reused_mtime = reused.stat().st_mtime_ns
    third = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "table2",
                            "PROFILE=smoke", f"DATA_DIR={table_data}", f"RESULTS={results}",
                            "WANDB=off"], capture_output=True, text=True, timeout=900)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert reused.stat().st_mtime_ns == reused_mtime
    with open(out / "table2.csv") as f:
        table2 = list(csv.DictReader(f))
    assert [row["row"].split(" (")[0] for row in table2] == [
        "Rotation", "Jigsaw", "SimCLR", "Multi-task", "BYOL", "Barlow Twins", "MoCo v2"]
    assert all(0 <= float(row[f"{h} mean"]) <= 100 for row in table2
               for h in ("FGSM, partial", "PGD-20, partial", "FGSM, linear"))
    partial = yaml.safe_load((out / "jigsaw-cifar100-f30-partial-adv-s0/config.yaml").read_text())
    assert partial["model"]["init_args"]["freeze"] == "partial"

    # the claims audit reads both tables' per-image records, runs nothing, judges every claim
    audited = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "claims",
                              "PROFILE=smoke", f"RESULTS={results}", "WANDB=off"],
                             capture_output=True, text=True, timeout=300)
    assert audited.returncode == 0, audited.stdout[-3000:] + audited.stderr[-3000:]
    found = json.loads((out / "claims.json").read_text())
    assert found["missing"] == []
    assert {v["claim"] for v in found["verdicts"]} == {f"C{i}" for i in range(1, 9)}  # C8: ours
    assert {v["verdict"] for v in found["verdicts"]} <= {"holds", "contradicted", "inconclusive"}
    assert {v["convention"] for v in found["verdicts"]} == {"pixel", "normalized"}
    assert {"fgsm@2/255", "pgd-norm@8/255", "worst@8/255"} <= {v["setting"] for v in found["verdicts"]}
    assert all((out / f"claims.{kind}").stat().st_size > 100 for kind in ("md", "csv", "png"))

    # A finished cell's file changed after it was written is not presented as a result: make
    # stops and names the file; RESTART=1 redoes the stage that wrote it (and the evaluation
    # that reads it, where the redone file differs) and nothing else.
    classifier = out / "supervised-clean-s0/classifier.ckpt"
    entry = torch.load(classifier, weights_only=True)
    trained = entry["state_dict"]["classifier.bias"].clone()
    entry["state_dict"]["classifier.bias"] += 1.0  # as if retrained by hand
    torch.save(entry, classifier)
    before = finished_results(out)
    changed = make_table1(table_data, results, wandb="off")
    log = changed.communicate(timeout=300)[0]
    assert changed.returncode != 0 and "RESTART=1" in log
    assert "results were changed or damaged" in log  # its size or its SHA-256, whichever
    assert "supervised-clean-s0/classifier.ckpt " in log  # differs first
    assert finished_results(out) == before
    restarted = make_table1(table_data, results, "off", "RESTART=1")
    log = restarted.communicate(timeout=300)[0]
    assert restarted.returncode == 0, log[-3000:]
    redone = {p for p, stamp in finished_results(out).items() if before.get(p) != stamp}
    assert redone - {out / "supervised-clean-s0.json"} == {classifier}
    retrained = torch.load(classifier, weights_only=True)["state_dict"]["classifier.bias"]
    assert torch.equal(retrained, trained)  # the same training, on the CPU: the same weights


@pytest.mark.slow
def test_smoke_curve_extends_a_shorter_curve_without_retraining(table_data, tmp_path):
    """`make curve` with one budget, then with two: the first budget's cells are reused byte for
    byte, the new segment continues the first one's checkpoint, and the curve has both rows."""
    results = tmp_path / "results"
    out = results / "smoke"

    def make_curve(epochs):
        return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "curve",
                               "PROFILE=smoke", f"DATA_DIR={table_data}", f"RESULTS={results}",
                               "WANDB=offline", f"CURVE_EPOCHS={epochs}", "SUPERVISED_EPOCHS=1"],
                              capture_output=True, text=True, timeout=900)

    first = make_curve("1")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    kept = finished_results(out)
    assert {p.name for p in kept} >= {"simclr-cifar100-e1-f100-adv-s0.json",
                                      "supervised-e1-clean-s0.json"}
    second = make_curve("1 2")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert finished_results(out).items() >= kept.items(), "a finished result was recomputed"
    assert "continuing simclr-cifar100-e2-s0 from" in second.stdout
    encoder = torch.load(out / "simclr-cifar100-e2-s0/encoder.pt", weights_only=True)
    assert encoder["metadata"]["epochs"] == 2
    with open(out / "curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epochs"] for row in rows] == ["1", "2"]
    for row in rows:
        assert 0 <= float(row["kNN mean"]) <= 100  # every export's kNN was logged
        for header in ("SimCLR probe: clean", "SimCLR probe, FGSM-trained: PGD-20"):
            assert 0 <= float(row[f"{header} mean"]) <= 100
    assert rows[0]["supervised, FGSM-trained: FGSM seeds"] == "1"
    assert rows[1]["supervised: clean seeds"] == "0"  # no 2-epoch supervised run was asked for
    result = json.loads((out / "simclr-cifar100-e2-f100-clean-s0.json").read_text())
    assert not any(key.startswith("fgsm@2/255") for key in result["metrics"])  # no ε sweep
    assert (out / "curve.png").stat().st_size > 10_000
    assert list(out.glob("wandb/offline-run-*")), "the curve was not logged to W&B"


@pytest.mark.slow
def test_smoke_table3_has_every_row_and_column(table_data, tmp_path):
    """`make table3`: both encoders under SLF, ALF, AFF and AFF-TRADES, every entry a measured
    accuracy; the adversarial encoder is exported as a plain one that fine-tuning loads."""
    results = tmp_path / "results"
    out = results / "smoke"
    made = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "table3",
                           "PROFILE=smoke", f"DATA_DIR={table_data}", f"RESULTS={results}",
                           "WANDB=offline"], capture_output=True, text=True, timeout=900)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    with open(out / "table3.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["row"] for row in rows] == ["SimCLR", "adversarial SimCLR"]
    for row in rows:
        for policy in ("SLF", "ALF", "AFF", "AFF-TRADES"):
            for metric in ("clean", "FGSM", "PGD-20", "worst case"):
                assert 0 <= float(row[f"{metric}, {policy} mean"]) <= 100
    encoder = torch.load(out / "adv_simclr-cifar100-s0/encoder.pt", weights_only=True)
    assert encoder["metadata"]["pretext"] == "adv_simclr"
    assert not any(".adversarial." in key for key in encoder["state_dict"])  # one branch kept
    aff = yaml.safe_load((out / "adv_simclr-cifar100-f100-aff-s0/config.yaml").read_text())
    assert {k: aff["model"]["init_args"][k] for k in ("freeze", "adv_weight")} == {
        "freeze": "full", "adv_weight": 1.0}
    assert aff["model"]["init_args"]["attack"] == {  # PGD-2 at the FGSM cells' ε
        "class_path": "robust_ssl.attacks.PGD", "init_args": {"eps": 8 / 255, "steps": 2}}
    trades = yaml.safe_load((out / "simclr-cifar100-f100-aff-trades-s0/config.yaml").read_text())
    assert trades["model"]["init_args"]["trades_beta"] == 6.0
    assert trades["model"]["init_args"]["attack"] == {  # TRADES's adversary, AFF's budget
        "class_path": "robust_ssl.attacks.TRADES", "init_args": {"eps": 8 / 255, "steps": 2}}
    assert "adversarial SimCLR" in (out / "table3.md").read_text()
    assert (out / "table3.png").stat().st_size > 10_000
    assert list(out.glob("wandb/offline-run-*")), "the table was not logged to W&B"


def test_without_data_or_network_it_stops_before_training(tmp_path):
    """DOWNLOAD=0 and an empty DATA_DIR: one message that says how to provide the data."""
    empty = tmp_path / "empty"
    empty.mkdir()
    process = make_table1(empty, tmp_path / "results", "off", "DOWNLOAD=0")
    log = process.communicate(timeout=120)[0]
    assert process.returncode != 0
    assert "robust-ssl: error:" in log and "not found in data directory" in log
    assert "download" in log.lower()
    assert not (tmp_path / "results").exists()  # nothing trained, nothing written


def test_bad_variables_stop_make_before_anything_is_written(tmp_path):
    for variables in ([f"RESULTS={tmp_path / 'my results'}"],
                      [f"RESULTS={tmp_path / 'r'}", "PROFILE=fast"],
                      [f"RESULTS={tmp_path / 'r'}", "WANDB=maybe"],
                      [f"RESULTS={tmp_path / 'r'}", "MODEL_ARTIFACTS=sometimes"],
                      [f"RESULTS={tmp_path / 'r'}", "SEEDS=0 x"],
                      [f"RESULTS={tmp_path / 'r'}", "CURVE_EPOCHS=0 1"]):
        out = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "table1",
                              *variables], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0, out.stdout
        assert f"{variables[-1].split('=')[0]}=" in out.stderr and "Stop." in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_data_directory_with_a_space_is_quoted(tmp_path):
    data = tmp_path / "my data"
    write_image_folder(data / "cifar10", {"train": 4, "test": 2})
    out = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "check-data",
                          f"DATA_DIR={data}", "PRETRAIN_DATA=cifar10", "DOWNLOAD=0"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "data: cifar10 test: 6 images, 3 classes" in out.stdout


@pytest.mark.slow
def test_smoke_robustssl_table_reads_a_foreign_encoder_and_reruns_nothing(table_data, tmp_path):
    """`make robustssl ENCODERS=...` with a file in ACL's layout (dual BatchNorm, its key
    names): imported, fine-tuned under SLF, ALF and AFF beside this suite's two encoders,
    evaluated clean / PGD-20 / corruptions (generated: no CIFAR-10-C here); a second make
    runs no cell."""
    from tests.test_layouts import acl_keys, torchvision_weights

    # torchvision's stem, 16x cheaper on a CPU than the field's CIFAR stem (which the paper
    # rehearsal runs): ENCODERS says so, as a user would for such a file
    torch.save({"epoch": 1000, "state_dict": acl_keys(torchvision_weights(stem="imagenet"), 2, 1)},
               tmp_path / "ACL_DS.pt")
    results = tmp_path / "results"
    out = results / "smoke"
    command = ["make", "--no-print-directory", "-C", str(ROOT), "robustssl", "PROFILE=smoke",
               f"DATA_DIR={table_data}", f"RESULTS={results}", "WANDB=offline",
               f"ENCODERS=ext={tmp_path / 'ACL_DS.pt'},stem=imagenet"]
    made = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    assert "robustssl: 12 done, 0 up to date, 0 failed" in made.stdout
    with open(out / "robustssl.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["row"] for row in rows] == ["SimCLR", "adversarial SimCLR",
                                            "ext (imported, acl layout)"]
    for row in rows:
        for policy in ("SLF", "ALF", "AFF"):
            for metric in ("clean", "PGD-20", "corruptions"):
                assert 0 <= float(row[f"{metric}, {policy} mean"]) <= 100
    imported = torch.load(out / "external-ext/encoder.pt", weights_only=True)
    assert imported["metadata"]["layout"] == "acl" and imported["architecture"]["stem"] == "imagenet"
    aff = yaml.safe_load((out / "external-ext-robustssl-aff-s0/config.yaml").read_text())
    model = aff["model"]["init_args"]
    assert model["trades_beta"] == 6.0 and model["attack"]["class_path"].endswith("TRADES")
    assert model["stem"] == "imagenet" and model["lr_milestones"] == [0.6, 0.8]
    result = json.loads((out / "external-ext-robustssl-slf-s0.json").read_text())
    assert result["corruptions"]["kind"] == "generated" and result["pretraining"]["layout"] == "acl"
    text = (out / "robustssl.md").read_text()
    assert "generated corruptions, not CIFAR-10-C" in text and "## The published leaderboard" in text
    assert "Epochs trained: SLF 1, ALF 1, AFF 1 (the benchmark: 25 each)." in text
    assert list(out.glob("wandb/offline-run-*")), "the table was not logged to W&B"
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 done, 12 up to date" in again.stdout, again.stdout[-2000:]


@pytest.mark.slow
def test_robust_ssl_table1_gives_what_make_table1_gives_and_w_and_b_shows_it(smoke_table1,
                                                                              tmp_path):
    """The front door by its own defaults (results/<profile> under the working directory)
    against make's table (which turns its variables into the same command's flags), logged
    offline; then what each offline run holds, read back from its .wandb file."""
    data, made = smoke_table1
    command = [str(Path(os.sys.executable).parent / "robust-ssl"), "table1", "--profile",
               "smoke", "--data-dir", str(data), "--jobs", "2", "--wandb", "offline"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "profile: smoke" in done.stdout and "13 done, 0 up to date, 0 failed" in done.stdout
    assert metrics(tmp_path / "results") == metrics(made)
    out = tmp_path / "results" / "smoke"
    table = (out / "table1.md").read_text()
    assert table == (made / "smoke" / "table1.md").read_text() and table in done.stdout
    check_dashboard(out)


def check_dashboard(out: Path) -> None:
    runs = {(r.name, r.job_type): r for r in offline_runs(out)}
    evaluated = [c for c in grid.table1("cifar100", (0,)) if c.evaluated]
    assert len(runs) == 1 + 2 * len(evaluated) + 1  # pretraining, the cells' two stages, report
    encoder = runs["simclr-cifar100-s0", "pretrain"].outputs("encoder")
    assert [a.name for a in encoder] == ["smoke-simclr-cifar100-s0-encoder"]
    assert encoder[0].references and not encoder[0].files  # by reference unless asked
    for cell in evaluated:
        trained = runs[cell.name, cell.stage]
        evaluation = runs[cell.name, "evaluate"]
        for run in (trained, evaluation):
            keys = run.config["cell"]
            assert run.group == "table1-smoke" and {"table1", "smoke", "seed0"} <= set(run.tags)
            assert (keys["table"], keys["profile"], keys["seed"], keys["cell"]) == (
                "table1", "smoke", 0, cell.name)
            assert keys["training"] == cell.column and keys["eps_space"] == "pixel"
            assert keys["fraction"] == (1 if cell.row in ("supervised", "random encoder")
                                        else grid.FRACTIONS[cell.row])
            assert keys["policy"] == ("full" if cell.row == "supervised" else "linear")
            assert keys["pretext"] == ("simclr" if cell.encoder else None)
        assert 0 <= trained.history["val/acc"] <= 1
        assert {"test/clean", "test/fgsm@8/255", "test/pgd@8/255"} <= set(evaluation.history)
        # lineage: encoder -> classifier -> result, each used with the digest it was made with
        if cell.encoder:
            assert [(a.name, a.digest) for a in trained.inputs("encoder")] == [
                (encoder[0].name, encoder[0].digest)]
        classifier = trained.outputs("classifier")
        assert [(a.name, a.digest) for a in evaluation.inputs("classifier")] == [
            (f"smoke-{cell.name}-classifier", classifier[0].digest)]
        result = evaluation.outputs("result")
        assert sorted(result[0].files) == sorted(f"{cell.name}{suffix}" for suffix in (
            ".json", ".records.npz", ".examples.png"))
        # the ε line plot and the adversarial-example panel
        chart = evaluation.config["_wandb"]["visualize"]["eps_curve"]["panel_config"]
        assert chart["panelDefId"] == "wandb/line/v0" and chart["fieldSettings"]["x"] == "eps (/255)"
        curve = json.loads(next(evaluation.path.parent.glob(
            "files/media/table/eps_curve_table_*.table.json")).read_text())
        assert curve["columns"] == ["eps (/255)", "accuracy (%)", "attack"]
        assert {row[2] for row in curve["data"]} == {"fgsm", "pgd"}
        assert evaluation.history["examples._type"] == "image-file"
        assert (evaluation.path.parent / "files" / evaluation.history["examples.path"]).is_file()
        assert (out / f"{cell.name}.examples.png").stat().st_size > 10_000
    report = runs["table1", "report"]
    used = {a.name: a.digest for a in report.inputs("result")}
    assert used == {f"smoke-{c.name}-result": runs[c.name, "evaluate"].outputs("result")[0].digest
                    for c in evaluated}
    assert sorted(report.outputs("table")[0].files) == sorted(
        f"table1{suffix}" for suffix in (".md", ".csv", ".png", "_eps.png", "_eps.csv"))
    for attack in ("fgsm", "pgd"):
        chart = report.config["_wandb"]["visualize"][f"eps_curve/{attack}"]["panel_config"]
        assert chart["fieldSettings"]["stroke"] == "cell"
    assert report.history["table1._type"] == "table-file"
