"""Export every evaluated cell of a results folder and evaluate the exports again: do they give
the cell's own numbers? The check behind "the table's cells export and re-evaluate identically"
(tests/test_external.py does the same on one toy cell).

Usage: python benchmarks/export_roundtrip.py results/smoke [--work DIR] [--formats ...]

For each cell JSON it runs `robust-ssl export` (TorchScript and state_dict) and
`robust-ssl evaluate-model` on the export with the cell's evaluation settings, read from the
JSON (data, test subset, batch size, attacks, ε, sweep, PGD steps, seed), through the command
line as a user would, then compares every metric, every subset number and the example counts.
Prints a row per export and exits non-zero if any differs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from robust_ssl.evaluation.result import budget_key


def evaluation_options(cell: dict) -> list[str]:
    """evaluate-model's options that repeat the cell's own evaluation."""
    evaluator, data = cell["config"]["evaluator"], cell["config"]["data"]
    if (data["seed"] != 0 or evaluator["pgd_step_ratio"] != 0.25
            or evaluator["large_eps"] != 64 / 255):
        raise SystemExit(f"{cell['run']}: data seed, PGD step or large ε other than "
                         "evaluate-model's; it cannot repeat this evaluation")
    options = ["--data-dir", data["data_dir"], "--dataset", data["dataset"],
               "--batch-size", str(data["eval_batch_size"]),
               "--test-fraction", str(data["test_fraction"]),
               "--attacks", *evaluator["attacks"], "--eps", str(evaluator["eps"]),
               "--sweep-epsilons", *map(str, evaluator["sweep_epsilons"]),
               "--pgd-steps", str(evaluator["pgd_steps"]),
               "--autoattack-examples", str(evaluator["autoattack_examples"] or 0)
               if evaluator["autoattack_examples"] is not None else "all",
               "--seed", str(cell["seed"])]
    if data["test_limit"]:
        options += ["--test-limit", str(data["test_limit"])]
    if evaluator["sweep_examples"]:
        options += ["--sweep-examples", str(evaluator["sweep_examples"])]
    return options


def robust_ssl(*arguments: str) -> None:
    done = subprocess.run([sys.executable, "-m", "robust_ssl", *arguments],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"robust-ssl {arguments[0]} failed:\n{done.stderr[-2000:]}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=Path, help="a profile's results folder, e.g. results/smoke")
    p.add_argument("--work", type=Path, help="where the exports go (default: RESULTS/roundtrip)")
    p.add_argument("--formats", nargs="+", default=["torchscript", "state_dict"],
                   choices=["torchscript", "state_dict"])
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    work = args.work or args.results / "roundtrip"
    work.mkdir(parents=True, exist_ok=True)
    cells = [json.loads(path.read_text()) for path in sorted(args.results.glob("*.json"))]
    cells = [c for c in cells if "metrics" in c and "evaluator" in c.get("config", {})]
    if not cells:
        raise SystemExit(f"no evaluated cells in {args.results}")
    print("cell | format | test images | metrics | clean | FGSM | PGD | identical | seconds")
    differing = 0
    for cell in cells:
        eps, options = cell["eps"], evaluation_options(cell)
        for fmt in args.formats:
            model, output = work / f"{cell['run']}.{fmt}.pt", work / f"{cell['run']}.{fmt}.json"
            start = time.perf_counter()
            robust_ssl("export", cell["config"]["evaluator"]["checkpoint"], str(model),
                       "--format", fmt)
            robust_ssl("evaluate-model", f"--{fmt.replace('_', '-')}", str(model),
                       "--output", str(output), "--device", args.device, *options)
            again = json.loads(output.read_text())
            same = all(again[key] == cell[key] for key in ("metrics", "subsets", "examples"))
            differing += not same
            shown = " | ".join(f"{100 * cell['metrics'][k]:.1f}"
                               + ("" if same else f" → {100 * again['metrics'][k]:.1f}")
                               for k in ("clean", budget_key("fgsm", eps), budget_key("pgd", eps)))
            print(f"{cell['run']} | {fmt} | {cell['examples']['test']} | "
                  f"{len(cell['metrics'])} | {shown} | {same} | "
                  f"{time.perf_counter() - start:.0f}", flush=True)
    print(f"{len(cells) * len(args.formats) - differing} of {len(cells) * len(args.formats)} "
          "exports give their cell's numbers exactly")
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
