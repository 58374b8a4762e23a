"""Start-up cost of one table cell: a cell whose result is up to date does nothing but start,
resolve its config and check its fingerprint, so its wall time is the start-up. Timed once as
a fresh interpreter (`python -m robust_ssl.runs.run ...`) and once forked from a warm grid
process (runs/launch.py), over a finished results tree.

    python benchmarks/cell_startup.py RESULTS/smoke DATA_DIR [--repeat 3]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

from robust_ssl.runs import grid, launch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a finished smoke Table 1's folder (results/smoke)")
    parser.add_argument("data_dir")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--pretrain-data", default="cifar100")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    table = argparse.Namespace(profile=args.profile, results=args.results,
                               data_dir=args.data_dir, pretrain_data=args.pretrain_data,
                               resize=False, restart=False, wandb="off")
    cell = next(c for c in grid.cells_of("table1", args.pretrain_data, (0,), profile=args.profile)
                if c.stage == "finetune")
    command = grid.command(cell, table, "table1")
    if not (Path(args.results) / f"{cell.name}.json").is_file():
        sys.exit(f"{cell.name} is not finished under {args.results}: run the smoke Table 1 first")

    def timed(run) -> list[float]:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            if run(command) != 0:
                sys.exit("the cell failed")
            times.append(time.perf_counter() - start)
        return times

    fresh = timed(lambda c: launch.subprocess.call(c, stdout=launch.subprocess.DEVNULL))
    start = time.perf_counter()
    launch.warm_up(wandb=False)
    warm = time.perf_counter() - start
    forked = timed(launch.run_cell) if launch.can_fork() else []
    print(f"cell {cell.name} (up to date), {args.repeat} runs each:")
    print(f"  fresh interpreter: {statistics.fmean(fresh):.2f} s (min {min(fresh):.2f})")
    print(f"  grid warm-up, once per table: {warm:.2f} s")
    if forked:
        print(f"  forked from the warm grid: {statistics.fmean(forked):.2f} s (min {min(forked):.2f})")


if __name__ == "__main__":
    main()
