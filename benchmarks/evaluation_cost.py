"""What the normalised-ε settings and the per-image records add to one cell's evaluation: the
cell's own evaluation (its run folder's evaluate.yaml) timed without the normalised settings,
with them on every image (`normalized_pgd_on: all`) and with the normalised PGD on the images
clean and the normalised FGSM left right (`survivors`, the profiles' choice); then the time to
write the records.

    python benchmarks/evaluation_cost.py results/quick/supervised-adv-s0 [--repeat 2]

Prints seconds per variant (the whole `trainer.test`, checkpoint loading included) and what each
adds to the first. Run it alone: the variants share the cores with nothing else.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import yaml

from robust_ssl.data.modules import LabeledDataModule
from robust_ssl.evaluation.evaluator import AdversarialEvaluator
from robust_ssl.evaluation.result import read_records, read_result, write_records

VARIANTS = {"pixel settings only": {"normalized_attacks": ()},
            "+ normalised, PGD on every image": {"normalized_attacks": ("fgsm", "pgd"),
                                                 "normalized_pgd_on": "all"},
            "+ normalised, PGD on the survivors": {"normalized_attacks": ("fgsm", "pgd"),
                                                   "normalized_pgd_on": "survivors"}}
PROFILES_CHOICE = "+ normalised, PGD on the survivors"


def evaluate(config: dict, output: Path, **options) -> float:
    model = config["model"]["init_args"] | {"output": str(output)} | options
    data = LabeledDataModule(**config["data"]["init_args"])
    pl.seed_everything(config.get("seed_everything", 0), verbose=False)
    trainer = pl.Trainer(accelerator="auto", devices=1, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False)
    start = time.perf_counter()
    trainer.test(AdversarialEvaluator(**model), data, verbose=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a finished cell's folder (results/quick/CELL)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    config = yaml.safe_load((Path(args.run_dir) / "evaluate.yaml").read_text())
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        outputs = {name: Path(folder) / f"variant{i}.json" for i, name in enumerate(VARIANTS)}
        for round_ in range(args.repeat):
            order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                times[name].append(evaluate(config, outputs[name], **VARIANTS[name]))
        results = {name: read_result(path) for name, path in outputs.items()}
        records = read_records(outputs[PROFILES_CHOICE])  # the most settings
        start = time.perf_counter()
        write_records(Path(folder) / "again.json",
                      {k: (records.ran[k], records.right[k]) for k in records.ran},
                      records.test_index)
        writing = time.perf_counter() - start
    base = statistics.fmean(times["pixel settings only"])
    examples = results[PROFILES_CHOICE].test_examples
    print(f"{args.run_dir}: {examples} test images, {args.repeat} run(s) each")
    for name, found in times.items():
        mean = statistics.fmean(found)
        normalized = ", ".join(f"{k} {100 * v:.1f}%" for k, v in results[name].metrics.items()
                               if "-norm" in k)
        print(f"  {name:36s} {mean:7.1f} s  ({100 * (mean / base - 1):+.0f}%)  "
              f"runs: {', '.join(f'{t:.1f}' for t in found)}  {normalized}")
    print(f"  writing the records ({len(records.ran)} settings): {1000 * writing:.1f} ms")


if __name__ == "__main__":
    main()
