"""How a cell's process starts. Each cell runs in a process of its own (a crash, a leak or a
global seed stays inside it), but a fresh interpreter spends ~4 s of a smoke cell's ~8 s
importing torch, Lightning and their friends. So on a CPU-only Linux machine the grid imports
them once and forks each cell from itself: the child starts with every module loaded and
nothing else (the parent never runs a torch operation, so no thread pool or device state is
inherited). Where a CUDA device may be present, forking a process that has loaded CUDA
libraries is unsafe, and each cell starts a fresh interpreter (seconds against cells of
minutes or hours).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import traceback
from pathlib import Path

RUNNER = "robust_ssl.runs.run"


def can_fork() -> bool:
    """Linux, no NVIDIA device node, and not turned off with ROBUST_SSL_FORK=0."""
    return (sys.platform == "linux" and os.environ.get("ROBUST_SSL_FORK", "1") != "0"
            and not glob.glob("/dev/nvidia[0-9]*"))


def warm_up(wandb: bool) -> None:
    """Import what every cell imports, once, in the parent (no torch operation runs)."""
    import robust_ssl.data.modules  # noqa: F401
    import robust_ssl.evaluation.evaluator  # noqa: F401
    import robust_ssl.finetune  # noqa: F401
    import robust_ssl.plumbing.lightning_cli  # noqa: F401
    import robust_ssl.pretrain  # noqa: F401
    import robust_ssl.runs.run  # noqa: F401
    from robust_ssl.plumbing.provenance import git_commit

    git_commit()  # the forked cells inherit the commit of the code loaded here

    if wandb:
        import wandb as _  # noqa: F401


class Forked:
    """A forked cell, polled like a subprocess.Popen."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def start_cell(command: list[str], env: dict[str, str] | None = None,
               log: Path | None = None) -> "Forked | subprocess.Popen":
    """Start one cell's `python -m robust_ssl.runs.run ...` command; returns its process
    (`poll()`, `wait()`). `env`: variables to set for it (CUDA_VISIBLE_DEVICES, read when CUDA
    starts in it); `log`: its stdout and stderr (default: this process's)."""
    variables = dict(env or {})
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    if command[1:3] != ["-m", RUNNER] or not can_fork():
        out = open(log, "a") if log is not None else None
        try:
            return subprocess.Popen(command, env=os.environ | variables, stdout=out,
                                    stderr=subprocess.STDOUT if out else None)
        finally:
            if out is not None:
                out.close()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return Forked(pid)
    code = 1  # the cell, in the child
    try:
        if log is not None:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        os.environ.update(variables)
        from robust_ssl.runs.run import main

        main(command[3:])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - a crash is this cell's, reported as a fresh process would
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no interpreter teardown: the parent's atexit handlers are not the cell's


def run_cell(command: list[str], **options) -> int:
    """Run one cell to its end; its exit status."""
    return start_cell(command, **options).wait()
