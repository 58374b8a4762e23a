"""The local executor on commands that stand in for cells: the dependency rules, N at once,
one GPU each, up-to-date cells never started, and the summary."""

import sys

import pytest

from robust_ssl.runs import executors
from robust_ssl.runs.executors import Job, LocalExecutor


def job(tmp_path, name, code="pass", needs=(), seconds=0.0):
    """A cell that records when it ran (and its CUDA_VISIBLE_DEVICES), sleeps, then runs `code`."""
    script = (f"import os, time, pathlib; p = pathlib.Path({str(tmp_path)!r}) / {name!r}; "
              f"p.write_text(f'{{time.time()}} {{os.environ.get(\"CUDA_VISIBLE_DEVICES\")}}'); "
              f"time.sleep({seconds}); {code}; p.with_suffix('.end').write_text(str(time.time()))")
    return Job(name, [sys.executable, "-c", script], set(needs), tmp_path / f"{name}-dir")


def started(tmp_path, name) -> float:
    return float((tmp_path / name).read_text().split()[0])


def test_a_failed_cell_stops_only_the_cells_that_need_it(tmp_path, capsys):
    jobs = [job(tmp_path, "pre", "raise SystemExit(3)"), job(tmp_path, "probe", needs=["pre"]),
            job(tmp_path, "deeper", needs=["probe"]), job(tmp_path, "supervised")]
    summary = LocalExecutor(jobs=1, gpus=0).run(jobs, "table1")
    assert summary.states == {"pre": "failed", "probe": "skipped", "deeper": "skipped",
                              "supervised": "done"}
    assert summary.failed and not (tmp_path / "probe").exists()
    out = capsys.readouterr().out
    assert "[1/4] pre: failed (exit status 3" in out and "probe: skipped" in out
    assert summary.text("table1").startswith("table1: 1 done, 0 up to date, 1 failed, 2 skipped")


def test_one_at_a_time_keeps_the_tables_order(tmp_path):
    names = ["a", "b", "c", "d"]
    jobs = [job(tmp_path, n, needs=["a"] if n == "c" else ()) for n in names]
    LocalExecutor(jobs=1, gpus=0).run(jobs, "t")
    starts = [started(tmp_path, n) for n in names]
    assert starts == sorted(starts)


def test_n_at_once_overlap_and_wait_for_what_they_need(tmp_path):
    jobs = [job(tmp_path, "pre", seconds=1.0), job(tmp_path, "other", seconds=1.0),
            job(tmp_path, "probe", needs=["pre"])]
    summary = LocalExecutor(jobs=2, gpus=0).run(jobs, "t")
    assert set(summary.states.values()) == {"done"}
    assert started(tmp_path, "other") < float((tmp_path / "pre.end").read_text())  # at once
    assert started(tmp_path, "probe") >= float((tmp_path / "pre.end").read_text())  # after it
    assert (tmp_path / "pre-dir" / "grid.log").is_file()  # each cell's output in its run dir


def test_each_running_cell_has_a_gpu_of_its_own(tmp_path, capsys):
    jobs = [job(tmp_path, name, seconds=0.5) for name in ("a", "b", "c")]
    executor = LocalExecutor(jobs=4, gpus=2)
    assert executor.jobs == 2 and "running 2 cells at once" in capsys.readouterr().out
    executor.run(jobs, "t")
    devices = {n: (tmp_path / n).read_text().split()[1] for n in ("a", "b", "c")}
    assert devices["a"] != devices["b"] and set(devices.values()) <= {"0", "1"}


def test_cells_that_are_up_to_date_are_not_started(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "finished", lambda j: j.name == "pre")
    jobs = [job(tmp_path, "pre"), job(tmp_path, "probe", needs=["pre"])]
    summary = LocalExecutor(jobs=1, gpus=0).run(jobs, "t")
    assert summary.states == {"pre": "up to date", "probe": "done"}
    assert not (tmp_path / "pre").exists()


def test_jobs_must_be_positive():
    with pytest.raises(Exception, match="JOBS=0"):
        LocalExecutor(jobs=0, gpus=0)
