"""One writer per cell (runs/celllock.py): the lock dies with its holder, the file goes with
the lock, a second taker waits, and the executors never start a cell another process holds."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from robust_ssl.errors import RobustSSLError
from robust_ssl.runs import celllock, executors, slurm
from robust_ssl.runs.executors import Job, LocalExecutor
from robust_ssl.runs.slurm import SlurmExecutor, SlurmOptions

ROOT = Path(__file__).resolve().parents[1]


def holding(run_dir: Path, until: Path | None = None, then: Path | None = None):
    """Another process holding the cell's lock: until `until` exists (or it is killed), and
    writing `then` just before it lets go. Returns once the lock is held."""
    code = textwrap.dedent(f"""
        import pathlib, sys, time
        from robust_ssl.runs import celllock
        with celllock.hold({str(run_dir)!r}):
            print("held", flush=True)
            until = {str(until) if until else None!r}
            while until is None or not pathlib.Path(until).exists():
                time.sleep(0.02)
            then = {str(then) if then else None!r}
            if then:
                pathlib.Path(then).touch()
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert process.stdout.readline() == "held\n"
    return process


def test_the_holder_is_named_and_a_killed_holder_leaves_no_lock(tmp_path):
    cell = tmp_path / "results" / "simclr-s0"
    process = holding(cell)
    holder = celllock.holder(cell)
    assert holder["pid"] == process.pid and holder["host"]
    assert f"process {process.pid} on " in celllock.describe(holder)
    os.kill(process.pid, signal.SIGKILL)  # no cleanup runs: the kernel drops the lock
    process.wait(timeout=30)
    assert celllock.lock_path(cell).exists()  # the file outlived it ...
    assert celllock.holder(cell) is None  # ... but no lock did, and the look removed it
    assert not celllock.lock_path(cell).exists()


def test_the_lock_file_goes_with_the_lock(tmp_path):
    cell = tmp_path / "simclr-s0"
    with celllock.hold(cell):
        assert celllock.lock_path(cell) == tmp_path / "simclr-s0.lock"
        assert celllock.lock_path(cell).exists()
    assert not celllock.lock_path(cell).exists()
    assert celllock.holder(cell) is None


def test_a_second_taker_waits_for_the_first_and_is_told_who_holds_it(tmp_path):
    cell, release, released = tmp_path / "cell", tmp_path / "release", tmp_path / "released"
    process = holding(cell, until=release, then=released)
    told = []

    def waiting(holder):
        told.append(holder)
        release.touch()  # let the holder finish now that we wait

    with celllock.hold(cell, waiting=waiting):
        assert released.exists()  # the lock came only after the holder was done
    assert [h["pid"] for h in told] == [process.pid]
    process.wait(timeout=30)


def test_a_results_tree_that_cannot_hold_a_lock_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")  # a results "directory" that is a file
    with pytest.raises(RobustSSLError, match="cannot write to .*choose a writable results"):
        with celllock.hold(blocker / "cell"):
            pass


def test_a_file_system_without_locks_is_one_clear_error_and_nothing_runs(tmp_path, monkeypatch):
    """An NFS mount with `nolock` answers lockf with ENOLCK (none is mounted here: lockf says
    so as that file system would)."""
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "lockf", no_locks)
    ran = []
    with pytest.raises(RobustSSLError, match="cannot lock .*No locks available.*POSIX locks"):
        with celllock.hold(tmp_path / "cell"):
            ran.append(True)
    assert ran == []


def marking_job(tmp_path: Path, name: str, needs=()) -> Job:
    """A cell whose command leaves a mark when it runs."""
    mark = tmp_path / f"{name}.ran"
    return Job(name, [sys.executable, "-c", f"open({str(mark)!r}, 'w')"], set(needs),
               tmp_path / name)


def test_the_local_executor_skips_a_held_cell_and_what_needs_it_when_told(tmp_path, capsys):
    process = holding(tmp_path / "pre")
    jobs = [marking_job(tmp_path, "pre"), marking_job(tmp_path, "probe", needs=["pre"]),
            marking_job(tmp_path, "supervised")]
    summary = LocalExecutor(1, gpus=0, held="skip").run(jobs, "table1")
    assert summary.states == {"pre": "held", "probe": "skipped", "supervised": "done"}
    assert not (tmp_path / "pre.ran").exists() and not (tmp_path / "probe.ran").exists()
    out = capsys.readouterr().out
    assert f"pre: not run: held by process {process.pid}" in out
    assert "1 held by another process" in summary.text("table1") and not summary.failed
    process.kill()
    process.wait(timeout=30)


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_local_executor_waits_for_a_held_cell_then_reads_it_as_up_to_date(
        tmp_path, capsys, monkeypatch, jobs):
    release, done = tmp_path / "release", tmp_path / "pre.result"
    process = holding(tmp_path / "pre", until=release, then=done)  # as another grid's cell
    monkeypatch.setattr(executors, "finished", lambda job: (tmp_path / f"{job.name}.result").exists())
    monkeypatch.setattr(executors, "POLL_SECONDS", 0.02)
    ending = subprocess.Popen(  # the other grid's cell ends a moment later
        [sys.executable, "-c", f"import time, pathlib; time.sleep(1); pathlib.Path({str(release)!r}).touch()"])
    summary = LocalExecutor(jobs, gpus=0).run(
        [marking_job(tmp_path, "pre"), marking_job(tmp_path, "probe", needs=["pre"])], "table1")
    assert summary.states == {"pre": "up to date", "probe": "done"}
    assert not (tmp_path / "pre.ran").exists() and (tmp_path / "probe.ran").exists()
    assert f"pre: waiting: held by process {process.pid}" in capsys.readouterr().out
    ending.wait(timeout=30)
    process.wait(timeout=30)


def test_a_slurm_submission_never_submits_a_held_cell(tmp_path, capsys, monkeypatch):
    class NoScheduler:
        def submit(self, *args):
            raise AssertionError("nothing may be submitted")

    process = holding(tmp_path / "pre")
    jobs = [marking_job(tmp_path, "pre"), marking_job(tmp_path, "probe", needs=["pre"])]
    skipping = SlurmExecutor(SlurmOptions(), tmp_path, scheduler=NoScheduler(), held="skip")
    assert skipping.plan(jobs) == {"pre": "held", "probe": "held"}
    assert f"pre: not submitted, held by process {process.pid}" in capsys.readouterr().out
    process.kill()
    process.wait(timeout=30)

    release, done = tmp_path / "release", tmp_path / "pre.result"
    process = holding(tmp_path / "pre", until=release, then=done)
    monkeypatch.setattr(slurm, "finished", lambda job: (tmp_path / f"{job.name}.result").exists())
    monkeypatch.setattr(slurm, "POLL_SECONDS", 0.02)
    subprocess.Popen([sys.executable, "-c",
                      f"import time, pathlib; time.sleep(1); pathlib.Path({str(release)!r}).touch()"])
    waiting = SlurmExecutor(SlurmOptions(), tmp_path, scheduler=NoScheduler())
    assert waiting.plan(jobs) == {"pre": "up to date", "probe": "submit"}
    assert f"pre: held by process {process.pid} on " in capsys.readouterr().out
    process.wait(timeout=30)


def test_a_hand_run_cell_waits_for_its_holder_and_then_finds_its_result(tmp_path):
    """`python -m robust_ssl.runs.run` takes the lock itself: here an import (the cheapest
    stage) started while another process holds its cell waits, then runs once it is free."""
    from tests.test_layouts import acl_keys, torchvision_weights
    import torch

    source = tmp_path / "ACL.pt"
    torch.save({"state_dict": acl_keys(torchvision_weights(stem="imagenet"), 2, 1)}, source)
    cell, release = tmp_path / "results" / "external-acl", tmp_path / "release"
    process = holding(cell, until=release)
    command = [sys.executable, "-m", "robust_ssl.runs.run", "import", "--profile", "smoke",
               "--run-dir", str(cell), "--source", str(source), "--option", "stem=imagenet"]
    importing = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    first = importing.stdout.readline()
    assert f"external-acl: held by process {process.pid}" in first
    assert not (cell / "encoder.pt").exists()  # it waits, writing nothing
    release.touch()
    rest = importing.communicate(timeout=120)[0]
    assert importing.returncode == 0, rest
    assert (cell / "encoder.pt").is_file() and not celllock.lock_path(cell).exists()
    process.wait(timeout=30)
