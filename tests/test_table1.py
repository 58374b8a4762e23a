"""`make table1` and `make table2` with PROFILE=smoke end to end on generated data, the first
interrupted and resumed, the second reusing the first's cells."""

import csv
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import write_cifar_files, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
ROWS = ["supervised", "1%", "10%", "30%", "100%", "random encoder"]


@pytest.fixture
def table_data(tmp_path):
    data = tmp_path / "data"
    write_cifar_files(data, "cifar100", train=200, test=20)
    # 64 train images per class: enough for a 1% fraction after the validation split
    write_image_folder(data / "cifar10", {"train": 64, "test": 4})
    return data


def make_table1(data: Path, results: Path, wandb: str, *extra: str):
    command = ["make", "--no-print-directory", "-C", str(ROOT), "table1", "PROFILE=smoke",
               f"DATA_DIR={data}", f"RESULTS={results}", f"WANDB={wandb}", *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


@pytest.mark.slow
def test_interrupted_smoke_table_resumes_and_reuses_finished_cells(table_data, tmp_path):
    results = tmp_path / "results"
    out = results / "smoke"
    first = make_table1(table_data, results, wandb="off")
    marker = out / "simclr-cifar100-f10-clean.json"
    deadline = time.time() + 600
    while not marker.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    assert marker.exists(), first.communicate()[0][-3000:]
    os.killpg(first.pid, signal.SIGTERM)  # as a user's Ctrl-C or a lost session would
    first.wait(timeout=60)
    finished = {p: p.stat().st_mtime_ns for p in out.glob("*.json")}
    finished[out / "simclr-cifar100/encoder.pt"] = (out / "simclr-cifar100/encoder.pt").stat().st_mtime_ns
    assert not (out / "table1.md").exists()

    second = make_table1(table_data, results, wandb="offline")
    log = second.communicate(timeout=900)[0]
    assert second.returncode == 0, log[-3000:]
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime, f"{path.name} was recomputed"
    assert "finished supervised-adv" in log or (out / "supervised-adv.json").is_file()

    table = (out / "table1.md").read_text()
    assert "CIFAR-100 train" in table
    with open(out / "table1.csv") as f:
        rows = list(csv.reader(f))
    assert [row[0] for row in rows[1:]] == ROWS
    header = rows[0]
    for row in rows[1:]:
        ours = [float(v) for h, v in zip(header, row) if h != "labeled_data" and "(paper)" not in h]
        assert len(ours) == 6 and all(0 <= v <= 100 for v in ours)
    assert (out / "table1.png").stat().st_size > 10_000
    assert list((out).glob("wandb/offline-run-*")), "the table was not logged to W&B"

    # Table 2 reuses Table 1's SimCLR encoder and its 30% adversarial cell
    reused = out / "simclr-cifar100-f30-adv.json"
    reused_mtime = reused.stat().st_mtime_ns
    third = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "table2",
                            "PROFILE=smoke", f"DATA_DIR={table_data}", f"RESULTS={results}",
                            "WANDB=off"], capture_output=True, text=True, timeout=900)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert reused.stat().st_mtime_ns == reused_mtime
    with open(out / "table2.csv") as f:
        table2 = list(csv.reader(f))
    assert [row[0].split(" ")[0] for row in table2[1:]] == ["Rotation", "Jigsaw", "SimCLR",
                                                           "Multi-task"]
    assert all(0 <= float(v) <= 100 for row in table2[1:] for v in row[1:4])


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
