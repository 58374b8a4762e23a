"""`robust-ssl <table>`: what `make <table>` does, as one command: check the data, run the
table's cells (grid.py), then write its report (report/__main__.py); `robust-ssl claims`
writes the claims audit and runs nothing. The make targets call it, so both give the same.

    robust-ssl table1 --profile quick --data-dir data --pretrain-data cifar10 --seeds 0 1 --jobs 2
    robust-ssl claims --profile quick --pretrain-data cifar10 --seeds 0 1
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from robust_ssl.errors import exit_on_user_error
from robust_ssl.runs import configs, grid
from robust_ssl.runs.executors import gpu_count

COMMANDS = (*sorted(grid.TABLES), "claims")


def check_data(args: argparse.Namespace) -> int:
    """Load (and cache) every split the table needs, in a process of its own: torch must not
    be loaded here before the grid has set the cells' thread counts, which OpenMP reads when
    torch loads and forked cells inherit (runs/launch.py). Its exit status."""
    command = [sys.executable, "-m", "robust_ssl.runs.run", "check-data", "--data-dir",
               args.data_dir, "--labeled", "cifar10", "--pretrain", args.pretrain_data]
    command += ["--download"] * args.download + ["--resize"] * args.resize
    return subprocess.run(command).returncode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robust-ssl <table>", description=__doc__.splitlines()[0])
    p.add_argument("table", choices=COMMANDS)
    p.add_argument("--profile", choices=configs.profiles(),
                   help="default: paper where a GPU is listed, else quick (as make)")
    p.add_argument("--results", help="the profile's results directory (default: "
                   "results/<profile>, results/<profile>-rehearsal with --rehearse)")
    p.add_argument("--download", action="store_true",
                   help="fetch missing CIFAR files through torchvision (DOWNLOAD=1 for make)")
    grid.add_table_arguments(p)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    gpu = gpu_count() > 0  # make's test: nvidia-smi lists a GPU
    args.profile = args.profile or ("paper" if gpu else "quick")
    if args.results is None:
        args.results = str(Path("results") / (args.profile + "-rehearsal" * args.rehearse))
    with exit_on_user_error():
        if args.table != "claims":
            seen = "a CUDA GPU is visible" if gpu else "no CUDA GPU visible"
            print(f"profile: {args.profile} ({seen}); choose with --profile paper|quick|smoke",
                  flush=True)
            checked = check_data(args)
            if checked:
                sys.exit(checked)
            failed = grid.run_table(args)
            if failed:
                sys.exit(failed)
            if args.dry_run:
                print("--dry-run: nothing ran, so there is no report")
                return
    from robust_ssl.report.__main__ import report

    report(args)
