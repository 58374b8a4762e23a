"""The slurm executor. Its graph and failure rules run on submitit's local executor behind a
stand-in for the scheduler that keeps SLURM's `afterok` rule; the rest runs on a real SLURM
cluster (ci/slurm-up.sh brings one up on this machine; .ci/run calls it): the smoke Table 1
against the local executor, a cell cancelled while it trains, a two-task DDP cell."""

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import submitit
import torch

from robust_ssl.errors import RobustSSLError
from robust_ssl.runs import grid, slurm
from robust_ssl.runs.executors import Job
from robust_ssl.runs.slurm import CellCall, SlurmExecutor, SlurmOptions

ROOT = Path(__file__).resolve().parents[1]
needs_slurm = pytest.mark.skipif(not slurm.available(), reason="no SLURM controller answers "
                                 "(`sinfo` fails): bash ci/slurm-up.sh starts one here")
# one node of this machine's cores: under pytest-xdist these tests run one after another in one
# worker, so that no test's jobs queue behind another's
pytestmark = pytest.mark.xdist_group("slurm")
# a cell's CPUs: the torch threads a local cell has here (one under pytest-xdist, where two
# threads beside the other worker's would oversubscribe the cores and run several times slower)
CPUS = torch.get_num_threads()


class AfterOkScheduler:
    """The scheduler's part, kept as SLURM keeps it, over submitit's LocalExecutor: a job
    starts once every job it is after has completed, and is cancelled when one of them failed
    (DependencyParameters=kill_invalid_depend)."""

    def __init__(self, folder: Path):
        self.executor = submitit.LocalExecutor(folder=folder)
        self.held: dict[str, tuple[Job, list[str]]] = {}
        self.jobs: dict[str, object] = {}
        self.final: dict[str, str] = {}
        self.cancelled: list[str] = []

    def submit(self, job: Job, after: list[str], table: str) -> str:
        job_id = str(len(self.held) + 1)
        self.held[job_id] = (job, after)
        return job_id

    def states(self):
        for job_id, (job, after) in self.held.items():
            if job_id in self.jobs or job_id in self.final:
                continue
            parents = [self._state(parent) for parent in after]
            if any(state in ("FAILED", "CANCELLED") for state in parents):
                self.final[job_id] = "CANCELLED"
            elif all(state == "COMPLETED" for state in parents):
                self.jobs[job_id] = self.executor.submit(CellCall(job.command))
        return {job_id: (self._state(job_id), "") for job_id in self.held}

    def _state(self, job_id: str) -> str:
        if job_id in self.final:
            return self.final[job_id]
        if job_id not in self.jobs:
            return "PENDING"
        job = self.jobs[job_id]
        if job.state == "RUNNING":
            return "RUNNING"
        return slurm.Scheduler._ended(job)

    def cancel(self, job_ids):
        self.cancelled += job_ids
        for job_id in job_ids:
            self.final.setdefault(job_id, "CANCELLED")

    def log(self, job_id: str) -> str:
        return str(self.jobs[job_id].paths.stderr) if job_id in self.jobs else "never ran"


def job(tmp_path, name, code="pass", needs=()):
    script = f"import pathlib; pathlib.Path({str(tmp_path)!r}, {name!r}).touch(); {code}"
    return Job(name, [sys.executable, "-c", script], set(needs), tmp_path / name)


def test_a_failed_cell_cancels_only_the_cells_after_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(slurm, "POLL_SECONDS", 0.05)
    scheduler = AfterOkScheduler(tmp_path / "submitit")
    jobs = [job(tmp_path, "pre", "raise SystemExit(3)"), job(tmp_path, "probe", needs=["pre"]),
            job(tmp_path, "deeper", needs=["probe"]), job(tmp_path, "supervised"),
            job(tmp_path, "after-supervised", needs=["supervised"])]
    summary = SlurmExecutor(SlurmOptions(), tmp_path, scheduler=scheduler).run(jobs, "table1")
    assert summary.states == {"pre": "failed", "probe": "skipped", "deeper": "skipped",
                              "supervised": "done", "after-supervised": "done"}
    assert not (tmp_path / "probe").exists() and (tmp_path / "after-supervised").exists()
    assert set(scheduler.cancelled) == {"2", "3"}  # cancelled, not left pending
    assert "exited with status 3" in Path(summary.logs["pre"]).read_text()
    out = capsys.readouterr().out
    assert "probe: submitted as job 2 (after 1)" in out and "deeper: submitted as job 3 (after 2)" in out
    assert "pre: failed (failed, job 1)" in out
    assert summary.text("table1").startswith("table1: 2 done, 0 up to date, 1 failed, 2 skipped")


def test_a_job_squeue_no_longer_lists_ended_as_its_result_file_says(tmp_path):
    executor = submitit.LocalExecutor(folder=tmp_path)
    good, bad = (executor.submit(CellCall([sys.executable, "-c", code]))
                 for code in ("pass", "raise SystemExit(1)"))
    good.wait(), bad.wait()
    assert slurm.Scheduler._ended(good) == "COMPLETED" and slurm.Scheduler._ended(bad) == "FAILED"
    Path(good.paths.result_pickle).unlink()  # killed before it wrote one
    assert slurm.Scheduler._ended(good) == "FAILED"


def test_a_requeued_cell_runs_the_same_command_again():
    call = CellCall([sys.executable, "-m", "robust_ssl.runs.run", "pretrain", "--run-dir", "R"])
    again = pickle.loads(pickle.dumps(call.checkpoint()))
    assert again.function.command == call.command and again.args == ()


def test_options_from_flags_and_yaml(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text("partition: gpu\naccount: lab\ntime_minutes: 60\nextra: {mail-type: END}\n")
    args = grid.parser().parse_args([
        "table1", "--profile", "paper", "--results", "r", "--executor", "slurm",
        "--slurm-config", str(config), "--slurm-partition", "a100", "--gpus-per-cell", "2",
        "--cpus-per-cell", "8", "--slurm-mem", "64G", "--slurm-option=--exclusive=user"])
    options = grid.slurm_options(args)
    parameters = options.parameters()
    assert parameters["partition"] == "a100" and parameters["account"] == "lab"  # flag over YAML
    assert parameters["time"] == 60 and parameters["gpus_per_node"] == 2
    assert parameters["ntasks_per_node"] == 2 and parameters["cpus_per_task"] == 8  # a rank a GPU
    assert parameters["additional_parameters"] == {"requeue": True, "mail-type": "END",
                                                   "exclusive": "user"}
    command = grid.command(grid.table1("cifar100", (0,))[3], args, "table1")
    assert "trainer.devices=2" in command[command.index("--set") :]
    assert command.count("trainer.devices=2") == 2  # training and its evaluation
    config.write_text("partitoin: gpu\n")
    with pytest.raises(RobustSSLError, match="unknown SLURM option.*partitoin"):
        SlurmOptions.from_yaml(config)


def test_dry_run_prints_the_plan_and_submits_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as ended:
        grid.main(["table1", "--profile", "smoke", "--results", str(tmp_path / "r"),
                   "--executor", "slurm", "--dry-run", "--slurm-partition", "gpu",
                   "--gpus-per-cell", "1"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert "would submit 13 of 13 cells" in out and "1 GPU(s)" in out and "partition gpu" in out
    assert "[3/13] simclr-cifar100-f1-clean-s0: after simclr-cifar100-s0" in out
    assert "[2/13] supervised-clean-s0: at once" in out
    assert not (tmp_path / "r").exists()
    with pytest.raises(SystemExit) as stopped:
        grid.main(["table1", "--profile", "smoke", "--results", str(tmp_path / "r"),
                   "--dry-run"])
    assert stopped.value.code != 0 and "use it with --executor slurm" in capsys.readouterr().err


# ---- on a real SLURM cluster --------------------------------------------------------------


def make_table1(data, results, *extra):
    return subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "table1",
                           "PROFILE=smoke", f"DATA_DIR={data}", f"RESULTS={results}", "WANDB=off",
                           *extra], capture_output=True, text=True)


def metrics(results: Path) -> dict[str, str]:
    """Every evaluated cell's metrics on all test images and on its subsets, as stored."""
    cells = [c.name for c in grid.table1("cifar100", (0,)) if c.evaluated]
    found = {}
    for name in cells:
        stored = json.loads((results / "smoke" / f"{name}.json").read_text())
        found[name] = json.dumps([stored["metrics"], stored["subsets"]])
    return found


@pytest.mark.slow
@needs_slurm
def test_smoke_table1_through_slurm_equals_the_local_executor(smoke_table1, tmp_path):
    data, local = smoke_table1  # the local executor's table
    through = make_table1(data, tmp_path / "slurm", "EXECUTOR=slurm", f"CPUS_PER_CELL={CPUS}")
    assert through.returncode == 0, through.stdout[-3000:] + through.stderr[-3000:]
    assert "simclr-cifar100-f1-clean-s0: submitted as job" in through.stdout
    assert "13 done, 0 up to date, 0 failed" in through.stdout
    assert len(metrics(local)) == 12
    assert metrics(tmp_path / "slurm") == metrics(local)
    again = make_table1(data, tmp_path / "slurm", "EXECUTOR=slurm")
    assert again.returncode == 0 and "0 done, 13 up to date" in again.stdout
    assert "submitted" not in again.stdout


def pretraining_job(data: Path, run_dir: Path, *sets: str) -> Job:
    command = [sys.executable, "-m", "robust_ssl.runs.run", "pretrain", "--profile", "smoke",
               "--data-dir", str(data), "--run-dir", str(run_dir), "--wandb", "off",
               "--seed", "0", "--set", "data.dataset=cifar100"]
    return Job(run_dir.name, command + [p for s in sets for p in ("--set", s)], set(), run_dir)


@pytest.mark.slow
@needs_slurm
def test_a_cell_cancelled_while_it_trains_fails_and_then_resumes(table_data, tmp_path):
    cell = pretraining_job(table_data, tmp_path / "long-pretraining", "trainer.max_epochs=20")
    training = Training(cell, tmp_path / "submitit")
    last = training.last
    subprocess.run(["scancel", training.job_id], check=True)
    training.thread.join(timeout=120)
    assert not training.thread.is_alive(), "the executor kept waiting for a cancelled cell"
    first = training.summary
    assert first.states == {"long-pretraining": "failed"} and first.failed
    assert Path(first.logs["long-pretraining"]).is_file()
    stopped_at = torch.load(last, weights_only=True)["epoch"]
    assert stopped_at < 19 and not (cell.run_dir / "encoder.pt").exists()

    second = SlurmExecutor(SlurmOptions(cpus_per_task=CPUS), tmp_path / "submitit-2").run(
        [cell], "t")
    assert second.states == {"long-pretraining": "done"}
    log = next((tmp_path / "submitit-2").glob("*/*_0_log.out")).read_text()
    assert f"resuming long-pretraining from {last}" in log
    assert torch.load(last, weights_only=True)["epoch"] == 19
    assert (cell.run_dir / "encoder.pt").is_file()


class Training:
    """One cell run by a SLURM executor in a thread, watched until it has a checkpoint."""

    def __init__(self, cell: Job, folder: Path):
        self.cell, self.summary = cell, None
        self.executor = SlurmExecutor(SlurmOptions(cpus_per_task=CPUS), folder)
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        self.last = cell.run_dir / "checkpoints" / "last.ckpt"
        deadline = time.monotonic() + 300
        while not self.last.is_file() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert self.last.is_file(), "the cell never wrote a checkpoint"
        self.job_id = next(iter(self.executor.scheduler.jobs))

    def _run(self):
        self.summary = self.executor.run([self.cell], "t")


@pytest.mark.slow
@needs_slurm
def test_a_preempted_cell_is_requeued_and_resumes_from_its_checkpoint(table_data, tmp_path):
    cell = pretraining_job(table_data, tmp_path / "preempted", "trainer.max_epochs=30")
    training = Training(cell, tmp_path / "submitit")
    last, job_id, watcher = training.last, training.job_id, training.thread
    # what SLURM sends ahead of a preemption or the time limit (submitit's --signal=USR2@90)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    # SLURM holds a requeued job for two minutes (reason BeginTime): release it at once
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and watcher.is_alive():
        reason = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%r"], capture_output=True,
                                text=True).stdout.strip()
        if reason == "BeginTime":
            subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)
            break
        time.sleep(0.2)
    watcher.join(timeout=300)
    assert training.summary.states == {"preempted": "done"}
    log = next((tmp_path / "submitit").glob("*/*_0_log.out")).read_text()
    assert f"Requeued job {job_id}" in log, log[-2000:]
    assert f"resuming preempted from {last}" in log
    assert torch.load(last, weights_only=True)["epoch"] == 29


def node_fails() -> None:
    """The node dies: slurmd, the job steps and every process under them are SIGKILLed at once
    (stopped first, so that none starts another); the controller alone goes on."""
    parents, doomed = {}, set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:  # /proc/PID/stat: "PID (name) state PPID ..."
            name, rest = stat.read_text().split("(", 1)[1].rsplit(")", 1)
        except OSError:
            continue  # ended while we read
        pid = int(stat.parent.name)
        parents[pid] = int(rest.split()[1])
        if name in ("slurmd", "slurmstepd"):
            doomed.add(pid)
    while grown := {pid for pid, parent in parents.items() if parent in doomed} - doomed:
        doomed |= grown
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in doomed:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def squeue(job_id: str, field: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", field], capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.slow
@needs_slurm
def test_a_cell_on_a_lost_node_is_requeued_and_resumes_to_the_uninterrupted_result(
        table_data, tmp_path):
    cell = pretraining_job(table_data, tmp_path / "lost", "trainer.max_epochs=20")
    training = Training(cell, tmp_path / "submitit")
    node_fails()
    try:
        # the controller finds the node silent after SlurmdTimeout (ci/slurm-up.sh), marks it
        # down and requeues the job (--requeue)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and squeue(training.job_id, "%T") == "RUNNING":
            time.sleep(0.5)
        node = subprocess.run(["scontrol", "show", "node"], capture_output=True,
                              text=True).stdout
        assert "DOWN" in node, node
        assert squeue(training.job_id, "%T") in ("PENDING", "REQUEUED", "CONFIGURING")
    finally:
        subprocess.run(["slurmd"], check=True)  # the node comes back (ReturnToService=2)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and training.thread.is_alive():
        if squeue(training.job_id, "%r") == "BeginTime":  # SLURM's hold on a requeued job
            subprocess.run(["scontrol", "update", f"jobid={training.job_id}", "StartTime=now"])
        time.sleep(0.5)
    training.thread.join(timeout=300)
    assert training.summary.states == {"lost": "done"}
    log = next((tmp_path / "submitit").glob("*/*_0_log.out")).read_text()
    assert f"resuming lost from {training.last}" in log, log[-2000:]

    # the same cell uninterrupted, with the job's torch threads
    reference = pretraining_job(table_data, tmp_path / "uninterrupted", "trainer.max_epochs=20")
    subprocess.run(reference.command, check=True, capture_output=True,
                   env=os.environ | {"OMP_NUM_THREADS": str(CPUS)})
    resumed = torch.load(cell.run_dir / "encoder.pt", weights_only=True)["state_dict"]
    expected = torch.load(reference.run_dir / "encoder.pt", weights_only=True)["state_dict"]
    assert resumed.keys() == expected.keys() and len(expected) > 50
    differing = [name for name, tensor in expected.items() if not torch.equal(tensor, resumed[name])]
    assert differing == []


@pytest.mark.slow
@needs_slurm
def test_a_two_task_cell_trains_as_two_ddp_ranks_under_slurm(table_data, tmp_path):
    """Each SLURM task is one rank (Lightning's SLURM environment, gloo); together they see
    the 200 pretraining images once per epoch: 2 ranks × 4 steps × batch 25 (which images:
    the next test)."""
    cell = pretraining_job(table_data, tmp_path / "ddp", "trainer.devices=2",
                           "trainer.max_epochs=2", "trainer.limit_train_batches=1.0",
                           "data.batch_size=25")
    options = SlurmOptions(tasks_per_cell=2, cpus_per_task=1)
    summary = SlurmExecutor(options, tmp_path / "submitit").run([cell], "t")
    logs = [path.read_text() for path in sorted((tmp_path / "submitit").glob("*/*_log.out"))]
    assert summary.states == {"ddp": "done"}, logs[0][-3000:]
    assert len(logs) == 2  # a log per task
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in logs[0] and "GLOBAL_RANK: 1, MEMBER: 2/2" in logs[1]
    assert "encoder saved" in logs[0] and "encoder saved" not in logs[1]
    checkpoint = torch.load(cell.run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 2 * 4  # 100 images a rank, batch 25: 4 steps an epoch
    assert (cell.run_dir / "encoder.pt").is_file()


def record_image_order(out_dir: str) -> None:
    """One SLURM task's rank of a two-rank DDP fit that records the images it saw."""
    import pytorch_lightning as pl

    from robust_ssl.data.modules import UnlabeledDataModule
    from tests.test_ddp_data import OrderRecorder

    data = UnlabeledDataModule(dataset=f"{out_dir}/images", data_dir=out_dir, batch_size=10)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False)
    assert type(trainer.strategy.cluster_environment).__name__ == "SLURMEnvironment"
    trainer.fit(OrderRecorder(out_dir), data)


@pytest.mark.slow
@needs_slurm
def test_two_slurm_tasks_see_every_image_once_per_epoch(tmp_path):
    from tests.test_ddp_data import write_numbered_images

    write_numbered_images(tmp_path / "images", 60)
    executor = submitit.SlurmExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(ntasks_per_node=2, cpus_per_task=1, nodes=1, time=10,
                               job_name="image-order")
    submitted = executor.submit(record_image_order, str(tmp_path))
    deadline = time.monotonic() + 300
    while not Path(submitted.paths.result_pickle).is_file() and time.monotonic() < deadline:
        time.sleep(0.5)
    ranks = [torch.load(tmp_path / f"train-rank{r}.pt") for r in range(2)]
    for epoch in range(2):
        seen = [ranks[r][f"train{epoch}"] for r in range(2)]
        assert len(seen[0]) == len(seen[1]) == 30
        assert sorted(seen[0] + seen[1]) == list(range(60)), f"epoch {epoch}"


@pytest.mark.slow
@needs_slurm
def test_cells_run_through_the_python_command_slurm_python_names(table_data, tmp_path):
    """SLURM_PYTHON="apptainer exec --nv robust-ssl.sif python", with a stand-in for
    apptainer (none is installed here) that notes its arguments and runs the rest on the host:
    the job starts through it and the cell finishes."""
    calls = tmp_path / "calls.txt"
    stand_in = tmp_path / "apptainer"
    stand_in.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
[ "$1" = exec ] || exit 64
shift
while [ "${{1#--}}" != "$1" ]; do shift; done
shift
exec "$@"
""")
    stand_in.chmod(0o755)
    python = f"{stand_in} exec --nv robust-ssl.sif {sys.executable}"
    cell = pretraining_job(table_data, tmp_path / "in-container")
    summary = SlurmExecutor(SlurmOptions(cpus_per_task=CPUS, python=python),
                            tmp_path / "submitit").run([cell], "t")
    assert summary.states == {cell.name: "done"}, summary.text("t")
    assert (cell.run_dir / "encoder.pt").is_file()
    assert f"exec --nv robust-ssl.sif {sys.executable} -u -m submitit.core._submit" in (
        calls.read_text())
