"""One cell of a table recipe: a profile's config, pointed at a run directory, run to completion.

The grid (grid.py) calls this for every cell of a table. It takes the stage's config
(experiments/base/<stage>.yaml under the profile's delta, configs.py), sends every output
(logs, checkpoints, encoder, results JSON) into the run directory, applies the cell's seed and
overrides, saves the resolved config there and runs it with the Lightning CLI. So a cell is
rerun by hand with `robust-ssl fit --config <run_dir>/config.yaml`, and a run that was
interrupted resumes from `<run_dir>/checkpoints/last.ckpt`, but only when it was interrupted
under the same config: a run directory holds the results of one config (see rundir.py).

    python -m robust_ssl.runs.run pretrain  --profile quick --run-dir R [--task rotation] [--set ...]
    python -m robust_ssl.runs.run pretrain  --profile quick --run-dir R2 --set trainer.max_epochs=8 \
        --continue-from R/checkpoints/last.ckpt       # epochs 5..8 of R's run, in R2
    python -m robust_ssl.runs.run finetune  --profile quick --run-dir R --data.fraction 0.1 \
        [--evaluate-output R.json]           # LightningCLI's dotted form; --set data.fraction=0.1
    python -m robust_ssl.runs.run evaluate  --profile quick --run-dir R --output R.json
    python -m robust_ssl.runs.run finetune  --profile quick --run-dir R --layer robustssl/alf \
        --evaluate-layer robustssl/evaluate --evaluate-output R.json   # under a protocol
    python -m robust_ssl.runs.run import    --profile quick --run-dir R --source ACL.pt \
        [--option branch=adversarial --option normalize=file --option backbone=resnet18 ...]
    python -m robust_ssl.runs.run check-data --data-dir D --labeled cifar10 --pretrain cifar100 [--download]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import yaml
from pytorch_lightning.callbacks import ModelCheckpoint

from robust_ssl.evaluation.examples import panel_path
from robust_ssl.runs import celllock, configs, dashboard, integrity, rehearsal
from robust_ssl.runs.configs import apply_overrides, pretext_tasks
from robust_ssl.errors import RobustSSLError, exit_on_user_error
from robust_ssl.evaluation.result import read_result, records_path
from robust_ssl.runs.rundir import (check_resumable, claim, delete, ensure_writable,
                               fingerprint, migrated, record_text, results_root)
from robust_ssl.plumbing.files import write_text_atomically
from robust_ssl.pretrain.callbacks import ExportEncoder
from robust_ssl.plumbing.tracking import MODES, wandb_mode

STAGES = {"pretrain": ("<task>", "fit"), "finetune": ("finetune", "fit"),
          "supervised": ("supervised", "fit"), "evaluate": ("evaluate", "test")}
FINAL_CLASSIFIER = "classifier.ckpt"


IMPORT_OPTIONS = {"backbone": "resnet18", "stem": "cifar", "branch": "adversarial",
                  "normalize": "file", "prefix": None}  # an import's options, their defaults
IMPORT_RECORD = "import.fingerprint.json"


def base_config(profile: str, stage: str, task: str = "simclr", layers: tuple[str, ...] = ()
                ) -> dict:
    """The stage's config in a profile: experiments/base/<stage>.yaml, then `layers` (a
    protocol's parts, configs.py), under the profile's delta."""
    if stage == "pretrain" and task not in pretext_tasks():
        raise RobustSSLError(f"unknown task {task!r}: choose one of {', '.join(pretext_tasks())}")
    return configs.load(profile, task if stage == "pretrain" else STAGES[stage][0],
                        tuple(layers or ()))


def route_outputs(config: dict, run_dir: Path, group: str, name: str, wandb_mode: str,
                  stage: str, keys: dict | None = None) -> None:
    """Send logs, checkpoints and the encoder export of a run into `run_dir`; each stage logs
    into its own folder (logs/<stage>/), so evaluating never replaces the training curves.
    `keys`: what the W&B run is filtered by (dashboard.py)."""
    trainer = config.setdefault("trainer", {})
    trainer["default_root_dir"] = str(run_dir)
    loggers = [{"class_path": "pytorch_lightning.loggers.CSVLogger",
                "init_args": {"save_dir": str(run_dir), "name": "logs", "version": stage}}]
    if wandb_mode != "off":
        loggers.append({"class_path": "robust_ssl.plumbing.wandb_logger.WandbLogger",
                        "init_args": {"project": "robust-ssl", "group": group, "name": name,
                                      "save_dir": str(run_dir), "offline": wandb_mode != "online",
                                      "job_type": stage,
                                      **dashboard.logger_arguments(keys or {})}})
    trainer["logger"] = loggers
    for callback in trainer.get("callbacks", []):
        args = callback.setdefault("init_args", {})
        kind = configs.resolve_class(callback["class_path"])
        if issubclass(kind, ModelCheckpoint):
            args["dirpath"] = str(run_dir / "checkpoints")
        elif issubclass(kind, ExportEncoder):
            args["path"] = str(run_dir / "encoder.pt")


def identity_of(config: dict) -> str:
    """What the stage's data is (sources.data_identity), for its fingerprint."""
    from robust_ssl.data.sources import data_identity

    data = config["data"]["init_args"]
    return data_identity(data["dataset"], data.get("data_dir", "data"))


def stage_files(args: argparse.Namespace, run_dir: Path) -> tuple[str, Path, list[Path]]:
    """(config file name, final result, all results) of a stage in its run directory."""
    if args.stage == "evaluate":
        return "evaluate.yaml", Path(args.output), [Path(args.output), records_path(args.output)]
    final = run_dir / ("encoder.pt" if args.stage == "pretrain" else FINAL_CLASSIFIER)
    return "config.yaml", final, [run_dir / "checkpoints", final]


def resolve(args: argparse.Namespace, run_dir: Path) -> dict:
    """The stage's YAML with the run's overrides and its outputs routed into `run_dir`.
    Everything a user can get wrong here is checked before anything is written."""
    mode = wandb_mode(args.wandb)
    config = base_config(args.profile, args.stage, getattr(args, "task", "simclr"),
                         getattr(args, "layer", None))
    if args.stage == "evaluate":
        config["model"]["init_args"].update(checkpoint=str(run_dir / FINAL_CLASSIFIER),
                                           output=args.output, run_name=run_dir.name)
    seed = [] if args.seed is None else [f"seed_everything={args.seed}"]
    apply_overrides(config, [f"data.data_dir={args.data_dir}"] + seed + (args.set or []))
    group = args.group or args.profile
    keys = dashboard.stage_keys(args.stage, args.profile, group, run_dir, config)
    route_outputs(config, run_dir, group, run_dir.name, mode, args.stage, keys)
    if getattr(args, "rehearse", False):
        sets_epochs = any(item.startswith("trainer.max_epochs=") for item in args.set or [])
        rehearsal.cut(config, keeps_epochs=sets_epochs)
    return config


def input_files(args: argparse.Namespace, config: dict) -> dict[str, str | None]:
    """The files whose contents a stage's result depends on beyond its config."""
    model = config["model"].get("init_args", {})
    if args.stage == "evaluate":
        return {"model.checkpoint": model.get("checkpoint")}
    if args.stage in ("finetune", "supervised"):
        return {"model.encoder_path": model.get("encoder_path")}
    return {"continue_from": getattr(args, "continue_from", None)}


def primary() -> bool:
    """Whether this process is the cell's only or first rank: every rank of a DDP cell (a
    SLURM task each, or a process Lightning starts) runs this script; only the first writes
    what the cell writes outside Lightning."""
    return all(os.environ.get(name, "0") == "0" for name in ("SLURM_PROCID", "LOCAL_RANK",
                                                             "NODE_RANK"))


def prepare(args: argparse.Namespace) -> tuple[Path, bool]:
    """Resolve the config and claim the run directory for it (rundir.claim): results of
    another config stop the run unless --restart. Returns the config file to run and whether
    the stage's final result is already there, made by this very config."""
    run_dir = Path(args.run_dir)
    config = resolve(args, run_dir)
    if not primary():
        return await_primary(args, run_dir, config)
    if getattr(args, "continue_from", None):
        check_continuable(Path(args.continue_from), config)
    ensure_writable(run_dir)
    if args.stage == "evaluate":
        ensure_writable(Path(args.output).resolve().parent)
    name, final, outputs = stage_files(args, run_dir)
    root, data = results_root(run_dir), identity_of(config)
    current = fingerprint(config, input_files(args, config), root, data)
    record = Path(name).stem + ".fingerprint.json"
    unchanged = claim(run_dir, record, current, outputs, args.restart, root=root, data=data,
                      logs=[run_dir / "logs" / args.stage, run_dir / f"{args.stage}_minutes.txt"])
    done = unchanged and final.is_file()
    written = integrity.record_of(run_dir, name)
    if done and (problems := integrity.damage(written, root, full=args.verify)):
        if not args.restart:
            raise RobustSSLError(integrity.message(run_dir, args.stage, problems))
        delete(outputs + [written])  # redo this stage from its beginning
        done = False
    elif done and not written.is_file():  # finished before stages recorded their outputs
        integrity.write(written, written_files(args, run_dir), root)
    write_text_atomically(run_dir / name, yaml.safe_dump(config, sort_keys=False))
    write_text_atomically(run_dir / record, record_text(current))
    return run_dir / name, done


def written_files(args: argparse.Namespace, run_dir: Path) -> list[Path]:
    """The files a finished stage leaves: its results, and a fit's last checkpoint (what
    continuing a pretraining reads)."""
    outputs = stage_files(args, run_dir)[2]
    last = run_dir / "checkpoints" / "last.ckpt"
    return [path for path in outputs if path.suffix] + ([last] if args.stage != "evaluate" else [])


def await_primary(args: argparse.Namespace, run_dir: Path, config: dict,
                  timeout: float = 600.0) -> tuple[Path, bool]:
    """A later rank's prepare: wait until the first rank has claimed the run directory for
    this same config (its fingerprint record is written last), then run what it runs."""
    name, final, _ = stage_files(args, run_dir)
    root, data = results_root(run_dir), identity_of(config)
    expected = record_text(fingerprint(config, input_files(args, config), root, data))
    record = run_dir / (Path(name).stem + ".fingerprint.json")
    deadline = time.monotonic() + timeout
    while not (record.is_file() and record.read_text() == expected):
        if time.monotonic() > deadline:
            raise RobustSSLError(f"{run_dir}: the first rank did not claim the run directory "
                                 f"within {timeout:.0f} s; see its log")
        time.sleep(0.2)
    return run_dir / name, final.is_file()


def finished(argv: list[str]) -> bool:
    """Whether a cell's command (`python -m robust_ssl.runs.run ...` less the interpreter) has
    nothing left to do: every stage's result is there under its fingerprint. Reads, never
    writes, so an executor can skip such cells without starting them."""
    args = parser().parse_args(argv)
    if args.stage == "import":
        run_dir = Path(args.run_dir)
        record = run_dir / IMPORT_RECORD
        return ((run_dir / "encoder.pt").is_file() and record.is_file()
                and json.loads(record.read_text()) == import_fingerprint(args)
                and not integrity.damage(integrity.record_of(run_dir, "import"),
                                         results_root(run_dir), full=args.verify))
    stages = [args] + ([evaluation_of(args)] if getattr(args, "evaluate_output", None) else [])
    for stage in stages:
        run_dir = Path(stage.run_dir)
        config = resolve(stage, run_dir)
        name, final, _ = stage_files(stage, run_dir)
        record = run_dir / (Path(name).stem + ".fingerprint.json")
        if not (final.is_file() and record.is_file()):
            return False
        root, data = results_root(run_dir), identity_of(config)
        current = fingerprint(config, input_files(stage, config), root, data)
        if migrated(json.loads(record.read_text()), root, data) != current:
            return False
        if integrity.damage(integrity.record_of(run_dir, name), root, full=stage.verify):
            return False  # the cell then runs, and names the damage
    return True


def import_options(args: argparse.Namespace) -> dict:
    """The import's options (IMPORT_OPTIONS) from its `--option KEY=VALUE`s."""
    options = dict(IMPORT_OPTIONS)
    for item in args.option or []:
        key, sep, value = item.partition("=")
        if not sep or key not in IMPORT_OPTIONS:
            raise RobustSSLError(f"--option {item!r}: expected KEY=VALUE with KEY one of "
                                 f"{', '.join(IMPORT_OPTIONS)}")
        options[key] = value
    return options


def import_fingerprint(args: argparse.Namespace) -> dict:
    """What an import computes: the source file by name and content (not by where it lies,
    so a results tree and its encoder file can move) and the options."""
    from robust_ssl.runs.rundir import file_hash

    source = Path(args.source)
    if not source.is_file():
        raise RobustSSLError(f"encoder file '{source}' does not exist: fix its path in ENCODERS")
    return {"stage": "import", "source": source.name, "sha256(source)": file_hash(source),
            **{f"option.{key}": value for key, value in import_options(args).items()}}


def import_stage(args: argparse.Namespace) -> None:
    """Read an encoder file of another codebase (models/layouts.py) into this suite's format,
    `<run dir>/encoder.pt`, with where it came from; up to date when the same file and options
    made it."""
    from robust_ssl.models.export import import_encoder

    run_dir = Path(args.run_dir)
    current = import_fingerprint(args)
    ensure_writable(run_dir)
    encoder, root = run_dir / "encoder.pt", results_root(run_dir)
    written = integrity.record_of(run_dir, "import")
    if claim(run_dir, IMPORT_RECORD, current, [encoder], args.restart) and encoder.is_file():
        problems = integrity.damage(written, root, full=args.verify)
        if not problems:
            print(f"{run_dir}: import is up to date", flush=True)
            return
        if not args.restart:
            raise RobustSSLError(integrity.message(run_dir, "import", problems))
    options = import_options(args)
    metadata = import_encoder(args.source, encoder, **options)
    integrity.write(written, [encoder], root)
    write_text_atomically(run_dir / IMPORT_RECORD, record_text(current))
    print(f"imported {args.source} into {encoder}: layout {metadata['layout']}, "
          f"{options['backbone']} with the {options['stem']} stem, BatchNorm branch "
          f"{metadata.get('branch', 'the only one')}, normalisation {metadata['normalization']}",
          flush=True)


def run_stage(args: argparse.Namespace) -> None:
    """Run a stage unless its result is there from the same config (as make would, but by
    fingerprint instead of time stamps), then its evaluation if asked."""
    if args.stage == "import":
        import_stage(args)
        return
    resolved, finished = prepare(args)
    if finished:
        print(f"{args.run_dir}: {args.stage} is up to date", flush=True)
    else:
        train_or_evaluate(args, resolved)
    if getattr(args, "evaluate_output", None):
        run_stage(evaluation_of(args))


def train_or_evaluate(args: argparse.Namespace, resolved: Path) -> None:
    from robust_ssl.plumbing.lightning_cli import run_cli

    run_dir = Path(args.run_dir)
    subcommand = STAGES[args.stage][1]
    cli_args = [subcommand, "--config", str(resolved)]
    last = run_dir / "checkpoints" / "last.ckpt"
    if subcommand == "fit" and last.is_file():
        check_resumable(last)
        print(f"resuming {run_dir.name} from {last}", flush=True)
        cli_args += ["--ckpt_path", str(last)]
    elif getattr(args, "continue_from", None):
        print(f"continuing {run_dir.name} from {args.continue_from}", flush=True)
        cli_args += ["--ckpt_path", str(args.continue_from)]
    print(f"$ robust-ssl {' '.join(cli_args)}", flush=True)
    start = time.perf_counter()
    os.environ["WANDB_DATA_DIR"] = str(run_dir / "wandb")  # staged artifacts travel with it
    try:
        finish_stage(args, run_dir, resolved, run_cli(cli_args), start)
    except BaseException:
        dashboard.finish(failed=True)
        raise
    dashboard.finish(failed=False)


def finish_stage(args: argparse.Namespace, run_dir: Path, resolved: Path, cli, start: float
                 ) -> None:
    """After the CLI returned: the final classifier, then (first rank) the example panel, the
    integrity record, the minutes, and the stage's W&B record last: should that fail, the
    cell fails loudly, but its results are finished and a rerun finds them up to date."""
    minutes = (time.perf_counter() - start) / 60
    if args.stage in ("finetune", "supervised"):
        # the finished classifier (weights, no optimizer state): its existence marks the
        # cell's training as complete
        cli.trainer.save_checkpoint(run_dir / FINAL_CLASSIFIER, weights_only=True)
    if not primary():
        return
    output = Path(args.output) if args.stage == "evaluate" else None
    if output is not None:
        cli.model.example_panel(panel_path(output))
    if STAGES[args.stage][1] == "fit":
        prune_checkpoints(run_dir / "checkpoints")
    name = stage_files(args, run_dir)[0]
    integrity.write(integrity.record_of(run_dir, name), written_files(args, run_dir),
                    results_root(run_dir))
    (run_dir / f"{args.stage}_minutes.txt").write_text(f"{minutes:.2f}\n")
    if output is not None:
        print(summary_line(output, run_dir), flush=True)
    dashboard.record_stage(cli.trainer, cli.model, args.stage, args.profile, run_dir,
                           yaml.safe_load(resolved.read_text()), output)


def prune_checkpoints(folder: Path) -> None:
    """Keep only last.ckpt of a finished run (what resuming, continuing and extending read):
    ModelCheckpoint's per-epoch file is then the same state again, ~90 MB a cell for a
    ResNet-18, and a table has dozens of cells. Partial files a killed run left go too (the
    cell's lock makes this process its only writer)."""
    for path in [*folder.glob("*.ckpt"), *folder.glob("*.partial")]:
        if path.name != "last.ckpt":
            path.unlink()


def check_continuable(checkpoint: Path, config: dict) -> None:
    """A run continued from a shorter one's checkpoint is that run made longer only if its
    learning rate does not depend on the run's length (a decay to `final_lr_ratio` over the
    run would have decayed otherwise) and if it adds epochs (one that already has
    `max_epochs` would end at once and export the earlier encoder under the later budget)."""
    ratio = config["model"].get("init_args", {}).get("final_lr_ratio")
    if ratio != 1.0:
        raise RobustSSLError(f"continuing a run needs a learning rate that does not depend on "
                             f"the run's length: set model.final_lr_ratio=1.0 (it is {ratio})")
    if not checkpoint.is_file():
        raise RobustSSLError(f"cannot continue from '{checkpoint}': no such checkpoint; run the "
                             "shorter pretraining that writes it first")
    check_resumable(checkpoint)
    done = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["epoch"] + 1
    max_epochs = config["trainer"].get("max_epochs")
    if max_epochs is None or max_epochs <= done:
        raise RobustSSLError(f"'{checkpoint}' has {done} epochs already: continue it with "
                             f"trainer.max_epochs above {done}, not {max_epochs}")


def evaluation_of(args: argparse.Namespace) -> argparse.Namespace:
    """The evaluate stage of a training run, in the same process: a table cell then pays for
    one start-up of torch and Lightning instead of two (seconds each on a small CPU)."""
    return argparse.Namespace(**{**vars(args), "stage": "evaluate", "output": args.evaluate_output,
                                 "set": args.evaluate_set, "evaluate_output": None,
                                 "layer": args.evaluate_layer})


def summary_line(output: Path, run_dir: Path) -> str:
    result = read_result(output)
    shown = ", ".join(f"{name} {100 * value:.1f}%" for name, value in result.metrics.items())
    minutes = sum(float(p.read_text()) for p in run_dir.glob("*_minutes.txt"))
    return f"finished {result.run}: {shown} ({minutes:.1f} min)"


def check_data(args: argparse.Namespace) -> None:
    """Load (and cache) every split a table needs before any training starts."""
    from robust_ssl.data.sources import load_split

    needed = [(args.labeled, "train"), (args.labeled, "test")]
    if args.pretrain and args.pretrain != args.labeled:
        needed.append((args.pretrain, "train"))  # pretraining reads no labels and no test split
    for dataset, split in needed:
        loaded = load_split(dataset, split, args.data_dir, download=args.download,
                            resize=args.resize)
        print(f"data: {dataset} {split}: {len(loaded)} images, {len(loaded.classes)} classes",
              flush=True)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m robust_ssl.runs.run",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    for stage in (*STAGES, "import"):
        p = sub.add_parser(stage)
        p.add_argument("--profile", required=True)
        p.add_argument("--run-dir", required=True)
        p.add_argument("--data-dir", default="data")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="a config override, e.g. data.fraction=0.1; also written as "
                       "LightningCLI writes it: --data.fraction 0.1")
        p.add_argument("--group", help="W&B group (default: the profile)")
        p.add_argument("--seed", type=int, help="the run's seed (seed_everything); the "
                       "config's when not given")
        p.add_argument("--wandb", choices=MODES, default=None,
                       help="offline (default, or $WANDB), online or off")
        if stage == "evaluate":
            p.add_argument("--output", required=True)
        if stage in STAGES:
            p.add_argument("--layer", action="append", metavar="PROTOCOL/PART",
                           help="a protocol's config over the base, under the profile's delta "
                           "(experiments/protocols/PROTOCOL/PART.yaml)")
        if stage in ("finetune", "supervised"):
            p.add_argument("--evaluate-output", metavar="JSON",
                           help="then evaluate the classifier, as `evaluate --output JSON`")
            p.add_argument("--evaluate-set", action="append", metavar="KEY=VALUE",
                           help="an override of that evaluation")
            p.add_argument("--evaluate-layer", action="append", metavar="PROTOCOL/PART",
                           help="a protocol layer of that evaluation")
        if stage == "import":
            p.add_argument("--source", required=True, help="the encoder file to import")
            p.add_argument("--option", action="append", metavar="KEY=VALUE",
                           help=f"{', '.join(IMPORT_OPTIONS)} (models/layouts.py)")
        if stage == "pretrain":
            p.add_argument("--task", default="simclr",
                           help="the pretext task: experiments/<profile>/<task>.yaml")
            p.add_argument("--continue-from", metavar="CKPT",
                           help="train on from this checkpoint of a shorter run of the same "
                           "config (the budget curve's segments); its hash is on record")
        p.add_argument("--restart", action="store_true",
                       help="delete this stage's outputs if another config made them, or they "
                       "were damaged after they were written, then run")
        p.add_argument("--verify", action="store_true",
                       help="check a finished stage's files against their SHA-256 on record, "
                       "not only their sizes and times (VERIFY=1 for make)")
        p.add_argument("--rehearse", action="store_true",
                       help="the same config cut to a couple of batches (runs/rehearsal.py)")
    data = sub.add_parser("check-data")
    data.add_argument("--data-dir", default="data")
    data.add_argument("--labeled", default="cifar10", help="the fine-tuning and test data")
    data.add_argument("--pretrain", help="the pretraining data (train split only)")
    data.add_argument("--download", action="store_true")
    data.add_argument("--resize", action="store_true", help="resize images to 32×32")
    return parser


def dotted_overrides(extra: list[str], parsed: argparse.ArgumentParser) -> list[str]:
    """LightningCLI's form of an override, `--model.adversarial true` or
    `--trainer.max_epochs=8`, as the `--set` item it means; anything else is an error."""
    items, rest = [], list(extra)
    while rest:
        flag = rest.pop(0)
        key, sep, value = flag.removeprefix("--").partition("=")
        if not flag.startswith("--") or "." not in key:
            parsed.error(f"unrecognized argument {flag!r}: overrides are --set KEY=VALUE or "
                         "--KEY VALUE with a dotted key, e.g. --model.adversarial true")
        if not sep:
            if not rest:
                parsed.error(f"{flag} has no value: write e.g. {flag} true")
            value = rest.pop(0)
        items.append(f"{key}={value}")
    return items


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, dotted overrides appended to --set's items."""
    cli = parser()
    args, extra = cli.parse_known_args(argv)
    if extra:
        if not hasattr(args, "set"):
            cli.error(f"unrecognized arguments: {' '.join(extra)}")
        args.set = (args.set or []) + dotted_overrides(extra, cli)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    with exit_on_user_error():
        if args.stage == "check-data":
            check_data(args)
        elif not primary():  # a later DDP rank: the first rank holds the cell
            run_stage(args)
        else:
            with celllock.hold(args.run_dir, waiting=lambda holder: print(
                    f"{Path(args.run_dir).name}: held by {celllock.describe(holder)}; waiting "
                    "for it (its result then reads as up to date)", flush=True)):
                run_stage(args)


if __name__ == "__main__":
    main()
