"""How a cell's process starts. Each cell runs in a process of its own (a crash, a leak or a
global seed stays inside it), but a fresh interpreter spends ~4 s of a smoke cell's ~8 s
importing torch, Lightning and their friends. So on a CPU-only Linux machine the grid imports
them once and forks each cell from itself: the child starts with every module loaded and
nothing else (the parent never runs a torch operation, so no thread pool or device state is
inherited). Where a CUDA device may be present, forking a process that has loaded CUDA
libraries is unsafe, and each cell starts a fresh interpreter as before (seconds against
cells of minutes or hours).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import traceback

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

    if wandb:
        import wandb as _  # noqa: F401


def run_cell(command: list[str]) -> int:
    """Run one cell's `python -m robust_ssl.runs.run ...` command; its exit status."""
    if command[1:3] != ["-m", RUNNER] or not can_fork():
        return subprocess.call(command)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the cell
        code = 1
        try:
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
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
