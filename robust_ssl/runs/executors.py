"""Where a table's cells run. The grid is a dependency graph (a cell needs the pretraining
whose encoder it reads, or the segment it continues); an executor starts a cell once what it
needs is done, skips cells whose results are up to date without starting them, lets a failed
cell stop only the cells that need it, prints a line when each cell starts and ends (with the
time so far and a projection of what is left) and ends with a summary and a non-zero status if
anything failed.

`LocalExecutor(jobs=1)` runs the cells one after another in the table's order, each printing
into this terminal, as the grid always did; `jobs=N` runs up to N at once, each with its own
GPU (CUDA_VISIBLE_DEVICES) where there are GPUs, else sharing the CPU cores (see
LocalExecutor), each writing its output to `<run dir>/grid.log`.

A cell that another process holds (celllock.py: a second grid on the same results tree, a
SLURM job, a hand-run cell) is never started: by default the executor waits for it and then
reads it as up to date; with `held="skip"` it leaves it, and what needs it, and says so.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from robust_ssl.errors import RobustSSLError
from robust_ssl.plumbing.steps import duration, line
from robust_ssl.runs import celllock, launch


POLL_SECONDS = 0.1  # how often running cells are looked at


@dataclass
class Job:
    """One cell as an executor sees it: its command, what it needs, where it logs."""

    name: str
    command: list[str]
    needs: set[str]
    run_dir: Path


@dataclass
class Summary:
    # name -> done|up to date|failed|skipped|held (left to the process that holds it)
    states: dict[str, str] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)  # failed name -> where to look

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    @property
    def failed(self) -> bool:
        return self.count("failed") > 0

    def text(self, table: str) -> str:
        parts = [f"{self.count(s)} {s}" for s in ("done", "up to date", "failed", "skipped")]
        if self.count("held"):
            parts.append(f"{self.count('held')} held by another process (not run; rerun to read them)")
        lines = [f"{table}: " + ", ".join(parts) + " (skipped: a cell they need failed or is held)"]
        lines += [f"  failed: {name} (log: {log})" for name, log in self.logs.items()]
        return "\n".join(lines)


def finished(job: Job) -> bool:
    """Nothing left to do for the cell (runs.run.finished); any error there is the cell's to
    report when it runs."""
    if job.command[1:3] != ["-m", launch.RUNNER]:
        return False
    from robust_ssl.runs import run

    try:
        return run.finished(job.command[3:])
    except (RobustSSLError, OSError, ValueError, KeyError):
        return False


def gpu_count() -> int:
    """GPUs nvidia-smi lists (no CUDA initialised in this process)."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


class Progress:
    """One line per cell event: `[k/N] name: event (time so far, about T left)`, T from the
    mean time of the cells done so far, over the cells left, `parallel` at a time."""

    def __init__(self, jobs: list[Job], summary: Summary, parallel: int = 1):
        self.numbers = {job.name: number for number, job in enumerate(jobs, 1)}
        self.summary, self.parallel = summary, parallel
        self.start, self.began, self.seconds = time.perf_counter(), {}, []

    def __call__(self, job: Job, event: str) -> None:
        left = len(self.numbers) - len(self.summary.states)
        projection = None
        if self.seconds and left:
            projection = left * sum(self.seconds) / len(self.seconds) / max(self.parallel, 1)
        print(line(self.numbers[job.name], len(self.numbers), f"{job.name}: {event}",
                   time.perf_counter() - self.start, projection), flush=True)

    def started(self, job: Job, event: str = "started") -> None:
        self.began[job.name] = time.perf_counter()
        self(job, event)

    def ended(self, job: Job, event: str) -> None:
        """`event` "done" gets the cell's time and counts toward the projection."""
        began = self.began.pop(job.name, None)
        if event == "done" and began is not None:
            self.seconds.append(time.perf_counter() - began)
            event = f"done in {duration(self.seconds[-1])}"
        self(job, event)


HELD_POLICIES = ("wait", "skip")


class LocalExecutor:
    def __init__(self, jobs: int = 1, gpus: int | None = None, held: str = "wait"):
        if held not in HELD_POLICIES:
            raise RobustSSLError(f"HELD={held} is unknown: choose wait (the default) or skip")
        self.held = held
        if jobs < 1:
            raise RobustSSLError(f"JOBS={jobs}: run at least one cell at a time")
        self.gpus = gpu_count() if gpus is None else gpus
        if self.gpus and jobs > self.gpus:
            print(f"JOBS={jobs} but {self.gpus} GPU(s): running {self.gpus} cells at once, one "
                  "GPU each", flush=True)
            jobs = self.gpus
        self.jobs = jobs
        # On a CPU every cell keeps the threads a lone cell would use: a share of them would
        # change float reductions and so the numbers (1 vs 2 threads: weights 0.08 apart after
        # four smoke SimCLR steps). Waiting threads sleep instead of spinning, so N cells share
        # the cores without burning them.
        self.cpu_env = {"OMP_WAIT_POLICY": "PASSIVE"} if not self.gpus and jobs > 1 else {}

    def run(self, jobs: list[Job], table: str) -> Summary:
        summary, pending = Summary(), list(jobs)
        progress = Progress(jobs, summary, parallel=self.jobs)
        running: list[tuple[object, Job, int | None]] = []  # process, job, gpu
        free_gpus = list(range(self.gpus))
        waiting: set[str] = set()  # cells another process holds, told once
        while pending or running:
            held_now = False
            for job in list(pending):
                if len(running) >= self.jobs:
                    break
                needed = [summary.states.get(name) for name in job.needs]
                if any(state in ("failed", "skipped", "held") for state in needed):
                    pending.remove(job)
                    summary.states[job.name] = "skipped"
                    progress(job, "skipped, a cell it needs " + (
                        "is held by another process" if "held" in needed else "failed"))
                elif all(state in ("done", "up to date") for state in needed):
                    holder = celllock.holder(job.run_dir)
                    if holder is not None and self.held == "skip":
                        pending.remove(job)
                        summary.states[job.name] = "held"
                        progress(job, f"not run: held by {celllock.describe(holder)}")
                        continue
                    if holder is not None:
                        held_now = True
                        if job.name not in waiting:
                            waiting.add(job.name)
                            progress(job, f"waiting: held by {celllock.describe(holder)}")
                        if self.jobs == 1:
                            break
                        continue
                    pending.remove(job)
                    if finished(job):
                        summary.states[job.name] = "up to date"
                        progress(job, "up to date")
                        continue
                    gpu = free_gpus.pop(0) if free_gpus else None
                    log = job.run_dir / "grid.log" if self.jobs > 1 else None
                    env = {"CUDA_VISIBLE_DEVICES": str(gpu)} if gpu is not None else self.cpu_env
                    process = launch.start_cell(job.command, env=env, log=log)
                    running.append((process, job, gpu))
                    progress.started(job, "started" + (f" on GPU {gpu}" if gpu is not None else ""))
                elif self.jobs == 1:
                    break  # the table's order: wait for what this cell needs
            if not running and pending and not held_now:
                raise RuntimeError(f"{pending[0].name} waits for cells that never run: list "
                                   "each cell after the cells it needs")
            ended = [entry for entry in running if entry[0].poll() is not None]
            if not ended:
                time.sleep(POLL_SECONDS)
                continue
            process, job, gpu = ended[0]
            running.remove(ended[0])
            if gpu is not None:
                free_gpus.append(gpu)
            code = process.returncode
            if code == 0:
                summary.states[job.name] = "done"
                progress.ended(job, "done")
            else:
                summary.states[job.name] = "failed"
                summary.logs[job.name] = (str(job.run_dir / "grid.log") if self.jobs > 1
                                          else "the output above")
                progress.ended(job, f"failed (exit status {code})")
        return summary
