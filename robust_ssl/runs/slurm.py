"""The slurm executor: a whole table submitted at once through submitit, one job per cell, each
held until the cells it needs have succeeded (`--dependency=afterok`), so the scheduler runs the
graph while this process only watches and reports.

Cells already up to date (and whose inputs are) are not submitted. A failed cell stops only
its dependents: they are cancelled at once (whether or not the cluster sets
`DependencyParameters=kill_invalid_depend`) and reported as skipped. A preempted or timed-out
cell is requeued by submitit, a cell whose node fails by SLURM (`--requeue`), and, its command
being the same, it resumes from its `last.ckpt` (runs/run.py). Job states come from `squeue`
and submitit's result files, so no accounting database (`sacct`) is needed. A cell of several
tasks (one per GPU, or `tasks_per_cell` on CPUs) runs one DDP rank per task under Lightning's
SLURM environment.

    python -m robust_ssl.runs.grid table1 ... --executor slurm --slurm-partition gpu \
        --gpus-per-cell 1 --cpus-per-cell 8 [--slurm-config cluster.yaml] [--dry-run] \
        [--slurm-python "apptainer exec --nv robust-ssl.sif python"]   # cells in a container
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from robust_ssl.errors import RobustSSLError
from robust_ssl.runs import celllock, launch
from robust_ssl.runs.executors import HELD_POLICIES, Job, Progress, Summary, finished

POLL_SECONDS = 2.0
# squeue's states of a job that has not ended (a requeued job passes through them again)
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SUSPENDED", "PREEMPTED", "SIGNALING", "STAGE_OUT",
          "STOPPED", "RESV_DEL_HOLD"}
NEVER = "DependencyNeverSatisfied"  # squeue's reason for a job whose parent failed


@dataclass
class SlurmOptions:
    """What each cell asks the scheduler for (sbatch's options); None: the cluster's default.
    From Make variables / grid flags, or a YAML file with these keys."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_minutes: int = 240  # a longer cell is requeued at its limit and resumes
    gpus_per_cell: int = 0
    cpus_per_task: int | None = None
    tasks_per_cell: int | None = None  # DDP ranks; default: one per GPU, else 1
    mem: str | None = None  # e.g. 32G
    constraint: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # any other sbatch option
    max_requeues: int = 3  # after time-outs (preemptions requeue without limit)
    # how a job starts Python, e.g. "apptainer exec --nv robust-ssl.sif python" to run every
    # cell in the suite's container (containers/); None: this process's interpreter
    python: str | None = None

    @property
    def tasks(self) -> int:
        return self.tasks_per_cell or max(self.gpus_per_cell, 1)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SlurmOptions":
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as error:
            raise RobustSSLError(f"cannot read the SLURM config '{path}': {error.strerror}") from None
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            raise RobustSSLError(f"the SLURM config '{path}' is not valid YAML"
                                 + (f" (line {where.line + 1})" if where else "")
                                 + ": write `key: value` lines, e.g. `partition: gpu`") from None
        known = {f.name for f in fields(cls)}
        if not isinstance(values, dict):
            raise RobustSSLError(f"the SLURM config '{path}' is not a mapping of options: write "
                                 f"`key: value` lines with keys {', '.join(sorted(known))}")
        unknown = sorted(set(map(str, values)) - known)
        if unknown:
            raise RobustSSLError(f"{path}: unknown SLURM option(s) {unknown}: use "
                                 f"{', '.join(sorted(known))}")
        wrong = [f"{key}: {values[key]!r}" for key in values
                 if values[key] is not None and (  # None: the cluster's default
                     not isinstance(values[key], dict if key == "extra" else (str, int))
                     or isinstance(values[key], bool))]
        if wrong:
            raise RobustSSLError(f"{path}: option(s) of the wrong kind, {', '.join(wrong)}: give "
                                 "each a word or a number (`extra` a mapping of sbatch options)")
        return cls(**values)

    def parameters(self) -> dict:
        """submitit.SlurmExecutor's parameters for one cell."""
        chosen = {"partition": self.partition, "account": self.account, "qos": self.qos,
                  "mem": self.mem, "constraint": self.constraint,
                  "cpus_per_task": self.cpus_per_task,
                  "gpus_per_node": self.gpus_per_cell or None}
        parameters = {key: value for key, value in chosen.items() if value is not None}
        # a cell uses the CPUs it was given as torch threads
        setup = ['[ -n "${SLURM_CPUS_PER_TASK:-}" ] && export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK']
        # a cell whose node fails goes back in the queue (whatever the cluster's JobRequeue)
        return parameters | {"time": self.time_minutes, "ntasks_per_node": self.tasks,
                             "nodes": 1, "setup": setup, "stderr_to_stdout": True,
                             "additional_parameters": {"requeue": True} | dict(self.extra)}

    def describe(self) -> str:
        parts = [f"{self.tasks} task(s)", f"{self.gpus_per_cell} GPU(s)",
                 f"{self.cpus_per_task or 'default'} CPU(s) per task",
                 f"{self.time_minutes} min"]
        named = {"partition": self.partition, "account": self.account, "qos": self.qos,
                 "mem": self.mem, "constraint": self.constraint}
        parts += [f"{key} {value}" for key, value in named.items() if value]
        parts += [f"--{key}={value}" for key, value in self.extra.items()]
        if self.python:
            parts.append(f"python: {self.python}")
        return ", ".join(parts)


class CellCall:
    """The job's function: one cell's command. A `python -m robust_ssl.runs.run` cell runs in
    the job's own process (every task of a DDP cell runs it: one rank each); anything else as a
    subprocess. A non-zero exit fails the job, so its dependents never start.
    `checkpoint` is submitit's hook at preemption or the time limit: the same call again, which
    resumes the cell from its last checkpoint."""

    def __init__(self, command: list[str]):
        self.command = list(command)

    def __call__(self) -> None:
        if self.command[1:3] == ["-m", launch.RUNNER]:
            from robust_ssl.runs.run import main

            # the command line the cell would have had (Lightning's CLI looks at it); a user
            # error exits non-zero, failing the job, and so does submitit's own exit after it
            # requeued a preempted cell, which must not be taken for the cell's result
            sys.argv = [self.command[2], *self.command[3:]]
            main(self.command[3:])
            return
        code = subprocess.run(self.command).returncode
        if code:
            raise RuntimeError(f"the cell exited with status {code}")

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


class Scheduler:
    """SLURM through submitit: submit a cell after others, read states, cancel."""

    def __init__(self, folder: Path, options: SlurmOptions):
        import submitit

        self.executor = submitit.SlurmExecutor(folder=folder / "%j",
                                               max_num_timeout=options.max_requeues,
                                               python=options.python)
        self.parameters = options.parameters()
        self.jobs: dict[str, object] = {}

    def submit(self, job: Job, after: list[str], table: str) -> str:
        dependency = {"dependency": "afterok:" + ":".join(after)} if after else {}
        self.executor.update_parameters(job_name=f"{table}:{job.name}", **self.parameters,
                                        **dependency)
        if not after:  # update_parameters keeps what an earlier call set
            self.executor.parameters.pop("dependency", None)
        submitted = self.executor.submit(CellCall(job.command))
        self.jobs[submitted.job_id] = submitted
        return submitted.job_id

    def states(self) -> dict[str, tuple[str, str]]:
        """(state, reason) of every job submitted here. A job squeue no longer lists (the
        controller forgets ended jobs after MinJobAge) ended as its result file says."""
        out = subprocess.run(["squeue", "-h", "-t", "all", "-u", getpass.getuser(),
                              "-o", "%i|%T|%r"], capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RobustSSLError(f"squeue failed: {out.stderr.strip()}")
        listed = {}
        for line in out.stdout.splitlines():
            job_id, state, reason = line.strip().split("|", 2)
            listed[job_id] = (state, reason)
        return {job_id: listed.get(job_id) or (self._ended(job), "")
                for job_id, job in self.jobs.items()}

    @staticmethod
    def _ended(job) -> str:
        result = Path(job.paths.result_pickle)
        if not result.is_file():
            return "FAILED"  # it ended without a result: killed, cancelled, or never started
        import pickle

        outcome, _ = pickle.loads(result.read_bytes())
        return "COMPLETED" if outcome == "success" else "FAILED"

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            subprocess.run(["scancel", *job_ids], capture_output=True, timeout=120)

    def log(self, job_id: str) -> str:
        return str(self.jobs[job_id].paths.stdout)


class SlurmExecutor:
    def __init__(self, options: SlurmOptions, folder: Path, scheduler=None,
                 dry_run: bool = False, held: str = "wait"):
        if held not in HELD_POLICIES:
            raise RobustSSLError(f"HELD={held} is unknown: choose wait (the default) or skip")
        self.options, self.folder, self.dry_run = options, Path(folder), dry_run
        self.scheduler, self.held = scheduler, held

    def plan(self, jobs: list[Job]) -> dict[str, str]:
        """name -> "up to date" for cells nothing is left to do for (nor for what they need),
        "held" for cells another process holds (with held="skip"; by default the plan waits
        for them, so a cell running elsewhere is never submitted again) and what needs them,
        else "submit"."""
        plan: dict[str, str] = {}
        for job in jobs:
            if any(plan[name] == "held" for name in job.needs):
                plan[job.name] = "held"
                continue
            holder = celllock.holder(job.run_dir)
            if holder is not None and self.held == "skip":
                print(f"{job.name}: not submitted, held by {celllock.describe(holder)}", flush=True)
                plan[job.name] = "held"
                continue
            if holder is not None and not self.dry_run:
                print(f"{job.name}: held by {celllock.describe(holder)}; waiting for it before "
                      "submitting anything after it", flush=True)
                while celllock.holder(job.run_dir) is not None:
                    time.sleep(POLL_SECONDS)
            inputs_ready = all(plan[name] == "up to date" for name in job.needs)
            plan[job.name] = "up to date" if inputs_ready and finished(job) else "submit"
        return plan

    def run(self, jobs: list[Job], table: str) -> Summary:
        plan = self.plan(jobs)
        if self.dry_run:
            self.print_plan(jobs, plan, table)
            return Summary()
        if self.scheduler is None:
            self.scheduler = Scheduler(self.folder, self.options)
        summary = Summary()
        progress = Progress(jobs, summary)
        ids: dict[str, str] = {}  # cell -> job id
        for job in jobs:
            if plan[job.name] in ("up to date", "held"):
                summary.states[job.name] = plan[job.name]
                progress(job, plan[job.name] if plan[job.name] == "up to date"
                         else "not submitted: it, or a cell it needs, is held by another process")
                continue
            after = [ids[name] for name in sorted(job.needs) if name in ids]
            ids[job.name] = self.scheduler.submit(job, after, table)
            print(f"{job.name}: submitted as job {ids[job.name]}"
                  + (f" (after {', '.join(after)})" if after else ""), flush=True)
        try:
            self.watch(jobs, ids, summary, progress)
        except KeyboardInterrupt:
            print(f"\nstopped watching; the jobs stay queued: scancel {' '.join(ids.values())}"
                  " cancels them", flush=True)
            raise
        return summary

    def watch(self, jobs: list[Job], ids: dict[str, str], summary: Summary,
              progress: Progress) -> None:
        by_name = {job.name: job for job in jobs}
        dependents = {job.name: {other.name for other in jobs if job.name in other.needs}
                      for job in jobs}
        running: set[str] = set()
        while any(name not in summary.states for name in ids):
            states = self.scheduler.states()
            for name, job_id in ids.items():
                if name in summary.states:
                    continue
                state, reason = states[job_id]
                job = by_name[name]
                if state == "RUNNING" and name not in running:
                    running.add(name)
                    progress.started(job, f"running as job {job_id}")
                elif state in ACTIVE and reason != NEVER:
                    continue
                elif state == "COMPLETED":
                    summary.states[name] = "done"
                    progress.ended(job, "done")
                elif self.needs_failed(job, summary):
                    summary.states[name] = "skipped"  # cancelled for its parent's failure
                    progress(job, "skipped, a cell it needs failed")
                    self.scheduler.cancel([job_id])
                else:
                    summary.states[name] = "failed"
                    summary.logs[name] = self.scheduler.log(job_id)
                    progress.ended(job, f"failed ({state.lower()}, job {job_id})")
                    self.skip(name, dependents, ids, summary, progress, by_name)
            if any(name not in summary.states for name in ids):
                time.sleep(POLL_SECONDS)

    @staticmethod
    def needs_failed(job: Job, summary: Summary) -> bool:
        return any(summary.states.get(name) in ("failed", "skipped") for name in job.needs)

    def skip(self, name, dependents, ids, summary, progress, by_name) -> None:
        """Cancel and mark every cell that depends on `name`, directly or not."""
        stack, cancelled = list(dependents[name]), []
        while stack:
            other = stack.pop()
            if other in summary.states or other not in ids:
                continue
            summary.states[other] = "skipped"
            progress(by_name[other], "skipped, a cell it needs failed")
            cancelled.append(ids[other])
            stack += dependents[other]
        self.scheduler.cancel(cancelled)

    def print_plan(self, jobs: list[Job], plan: dict[str, str], table: str) -> None:
        submitted = [job for job in jobs if plan[job.name] == "submit"]
        print(f"{table}: would submit {len(submitted)} of {len(jobs)} cells to SLURM "
              f"(the others are up to date), each: {self.options.describe()}; logs under "
              f"{self.folder}/<job id>/", flush=True)
        for number, job in enumerate(jobs, 1):
            after = sorted(name for name in job.needs if plan[name] == "submit")
            what = ("up to date, not submitted" if plan[job.name] == "up to date" else
                    "after " + ", ".join(after) if after else "at once")
            print(f"  [{number}/{len(jobs)}] {job.name}: {what}", flush=True)


def new_folder(results: Path) -> Path:
    """submitit's folder for one submission: job ids restart when a cluster's state is reset,
    so every run gets a folder of its own."""
    return results / "slurm" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def available() -> bool:
    """Whether a SLURM controller answers here."""
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


