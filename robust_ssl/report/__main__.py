"""`python -m robust_ssl.report <table>`: write a finished table's (or the curve's) markdown, CSV
and charts from its cells' results, print it, and log it to W&B unless --wandb off.

    python -m robust_ssl.report table1 --results results/quick --profile quick \\
        --pretrain-data cifar10 --seeds 0 1
    python -m robust_ssl.report curve --results results/quick --profile quick \\
        --pretrain-data cifar10 [--epochs 1 2 4 8 16] [--supervised-epochs 1 2 4]
    python -m robust_ssl.report claims --results results/quick --profile quick \\
        --pretrain-data cifar10 --seeds 0       # the paper's claims from Tables 1 and 2
    python -m robust_ssl.report robustssl --results results/quick --profile quick \\
        --pretrain-data cifar10 --encoders acl=ACL.pt [--ours simclr adv_simclr]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from robust_ssl.errors import exit_on_user_error
from robust_ssl.plumbing.tracking import MODES, wandb_mode
from robust_ssl.report.curve import write_curve
from robust_ssl.report.tables import write_table
from robust_ssl.runs import grid


REHEARSAL_NOTE = ("REHEARSAL: every cell cut to a couple of batches and its attacks to two "
                  "iterations (robust_ssl/runs/rehearsal.py); its numbers mean nothing, its "
                  "paths ran.\n\n")


def log_to_wandb(results: Path, name: str, group: str, mode: str, profile: str,
                 cells: list[grid.Cell]) -> None:
    """The finished report in its own run of the table's group: the table as a wandb.Table,
    its ε curves as line plots, its files as an artifact that uses every cell's result
    (runs/dashboard.py)."""
    import os

    import wandb

    from robust_ssl.runs import dashboard

    os.environ["WANDB_DATA_DIR"] = str(results / "wandb")  # staged files stay with the results
    with open(results / f"{name}.csv") as f:
        data = list(csv.reader(f))
    keys = {"table": name, "profile": profile, "stage": "report"}
    run = wandb.init(project=dashboard.PROJECT, group=group, name=name, job_type="report",
                     dir=str(results), mode="online" if mode == "online" else "offline",
                     config={"cell": keys}, tags=dashboard.tags_of(keys))
    for cell in cells:
        output = results / f"{cell.name}.json"
        if cell.evaluated and output.is_file():
            dashboard.use(run, dashboard.result_artifact(profile, output))
    logged = {name: wandb.Table(columns=data[0], data=data[1:])}
    curves = results / f"{name}_eps.csv"
    if curves.is_file():
        with open(curves) as f:
            points = list(csv.DictReader(f))
        for attack, title in (("fgsm", "FGSM"), ("pgd", "PGD-20")):
            rows = [[float(p["eps"]), float(p["accuracy"]), p["series"]] for p in points
                    if p["attack"] == attack]
            if rows:
                logged[f"eps_curve/{attack}"] = dashboard.eps_plot(
                    rows, f"{name}: {title} accuracy against ε", series="cell")
    run.log(logged)
    files = [results / f"{name}{suffix}" for suffix in (".md", ".csv", ".png", ".json",
                                                         "_eps.png", "_eps.csv")]
    run.log_artifact(dashboard.artifact(f"{profile}-{name}", "table",
                                        [f for f in files if f.is_file()]))
    run.finish()


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m robust_ssl.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(grid.TABLES) + ["claims"])
    parser.add_argument("--results", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--pretrain-data", default="cifar100")
    parser.add_argument("--seeds", type=grid.non_negative, nargs="*",
                        help="default: the profile's (as for the grid)")
    grid.add_budget_arguments(parser)
    grid.add_row_arguments(parser)
    parser.add_argument("--rehearse", action="store_true",
                        help="a rehearsal's results (the curve: one epoch per budget)")
    parser.add_argument("--wandb", choices=MODES, default=None,
                        help="offline (default, or $WANDB), online or off")
    return parser


def main(argv: list[str] | None = None) -> None:
    report(parser().parse_args(argv))


def report(args: argparse.Namespace) -> None:
    """Write, print and log the report of `args.table` (the parser's fields; the grid's
    parser has them all, so `robust-ssl <table>` passes its own)."""
    results = Path(args.results)
    with exit_on_user_error():
        mode = wandb_mode(args.wandb)
        if args.table == "claims":
            from robust_ssl.report.claims_output import write_claims

            text = write_claims(results, args.profile, args.pretrain_data, grid.seeds_of(args))
        elif args.table == "robustssl":
            from robust_ssl.report.robustssl import write_robustssl

            text = write_robustssl(results, args.profile, args.pretrain_data,
                                   grid.seeds_of(args), **grid.rows_of(args))
        elif args.table == "curve":
            text = write_curve(results, args.profile, args.pretrain_data, grid.seeds_of(args),
                               *grid.epochs_of(args))
        else:
            text = write_table(args.table, results, args.profile, args.pretrain_data,
                               grid.seeds_of(args))
    if args.rehearse:
        text = REHEARSAL_NOTE + text
        (results / f"{args.table}.md").write_text(text)
    if mode != "off":
        cells = (grid.table1(grid.pretrain_name(args.pretrain_data), grid.seeds_of(args))
                 + grid.table2(grid.pretrain_name(args.pretrain_data), grid.seeds_of(args))
                 if args.table == "claims" else
                 grid.cells_of(args.table, args.pretrain_data, grid.seeds_of(args),
                               *grid.epochs_of(args), profile=args.profile, **grid.rows_of(args)))
        log_to_wandb(results, args.table, f"{args.table}-{args.profile}", mode, args.profile,
                     cells)
    print(text)


if __name__ == "__main__":
    main()
