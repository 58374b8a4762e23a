"""The experiment grid: every table as a list of cells, the one description that both the
table recipes (`make table1` runs `python -m robust_ssl.runs.grid table1 ...`) and the report read.

A cell is one run directory `<results>/<name>`: a pretraining (it leaves `encoder.pt`) or a
fine-tuning followed by its evaluation (it leaves `<name>.json`). Cells are listed so that
each comes after the cells it reads. Adding a label fraction, a row or a table is editing
this file; the runner and the report follow.

    python -m robust_ssl.runs.grid table1 --profile quick --results results/quick \
        --data-dir data --pretrain-data cifar10 --seeds 0 1
    python -m robust_ssl.runs.grid curve --profile quick ... --epochs 1 2 4 8 16
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from robust_ssl.errors import RobustSSLError
from robust_ssl.runs import launch

FRACTIONS = {"1%": 0.01, "10%": 0.1, "30%": 0.3, "100%": 1.0}
TRAININGS = ("clean", "adv")  # without and with on-the-fly FGSM examples
TABLE2_TASKS = ("rotation", "jigsaw", "simclr", "multitask")  # the paper's rows
BEYOND_PAPER_TASKS = ("byol", "barlow_twins", "moco")  # Table 2's rows beyond the paper
TABLE2_ROWS = TABLE2_TASKS + BEYOND_PAPER_TASKS
TABLE2_FRACTION = "30%"
DEFAULT_SEEDS = {"paper": (0, 1, 2), "quick": (0,), "smoke": (0,)}
# The budget curve: SimCLR's encoder exported after these many pretraining epochs, and the
# supervised baseline trained from scratch for these many epochs (quick: its cost grows with
# the sum of the budgets, 5 min per epoch for the clean and FGSM runs together).
CURVE_EPOCHS = {"paper": (1, 2, 4, 8, 16, 32, 64, 100), "quick": (1, 2, 4, 8, 16),
                "smoke": (1, 2)}
SUPERVISED_EPOCHS = {"paper": CURVE_EPOCHS["paper"], "quick": (1, 2, 4), "smoke": (1,)}
# One pretraining run on every image, with a constant learning rate, so that the encoder after
# e epochs is the same in any curve that reaches e: a longer curve continues a shorter one.
CURVE_PRETRAINING = ("data.fraction=1.0", "model.final_lr_ratio=1.0")
NO_EPSILON_SWEEP = ("model.sweep_epsilons=[]",)  # the curve has no ε axis


@dataclass(frozen=True)
class Cell:
    """One run. `row` and `column` place its result in the report; `encoder` names the
    pretraining cell whose encoder.pt it fine-tunes (None: random weights); `continues`
    names the pretraining cell it picks up from, as a resumed run would."""

    name: str
    stage: str  # pretrain | finetune | supervised
    seed: int
    overrides: tuple[str, ...] = ()
    task: str | None = None
    encoder: str | None = None
    row: str | None = None
    column: str | None = None
    continues: str | None = None  # a pretraining cell whose last checkpoint this one trains on
    evaluate_overrides: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()  # a protocol's configs over the base (configs.py)
    evaluate_layers: tuple[str, ...] = ()
    source: str | None = None  # import: the encoder file of another codebase

    @property
    def evaluated(self) -> bool:
        return self.stage not in ("pretrain", "import")


def pretrain_name(pretrain_data: str) -> str:
    """The name cells use for the pretraining data: an image folder given by its path gets
    names of its own (folder-<name>), never those of cifar10 or cifar100."""
    return f"folder-{Path(pretrain_data).name}" if "/" in pretrain_data else pretrain_data


def adversarial(training: str) -> str:
    """The override of a cell trained without ('clean') or with ('adv') FGSM examples."""
    return f"model.adversarial={str(training == 'adv').lower()}"


# Table 3: standard and adversarial SimCLR encoders under the robust-SSL literature's
# fine-tuning policies, all on 100% of the labels (FineTuner settings over finetune.yaml):
# SLF standard linear fine-tuning; ALF adversarial linear fine-tuning (training examples only
# adversarial, FGSM; PGD_TRAINING for PGD-k); AFF adversarial full fine-tuning with PGD;
# AFF-TRADES the same with the TRADES loss and adversary (β = 6, AdvCL's AFF_trades; beyond
# the paper).
TABLE3_TASKS = ("simclr", "adv_simclr")
PGD_TRAINING = "model.attack.class_path=robust_ssl.attacks.PGD"  # keeps the attack's ε
TRADES_TRAINING = ("model.trades_beta=6.0", "model.attack.class_path=robust_ssl.attacks.TRADES")
POLICIES = {"SLF": ("clean", "linear", ()),  # (training, freeze, further overrides)
            "ALF": ("adv", "linear", ("model.adv_weight=1.0",)),
            "AFF": ("adv", "full", ("model.adv_weight=1.0", PGD_TRAINING)),
            "AFF-TRADES": ("adv", "full", TRADES_TRAINING)}
# The AFF policies' attack steps (of ε/4) and epochs per profile: the paper profile's 10 steps
# over the fine-tuning's 50 epochs; on a CPU, 2 steps for 2 epochs.
AFF_BUDGET = {"paper": ("model.attack.steps=10",),
              "quick": ("model.attack.steps=2", "trainer.max_epochs=2",
                        "trainer.check_val_every_n_epoch=2"),
              "smoke": ("model.attack.steps=2",)}


def pretraining(task: str, pretrain: str, seed: int) -> Cell:
    return Cell(f"{task}-{pretrain}-s{seed}", "pretrain", seed, task=task)


def fine_tuning(task: str, pretrain: str, seed: int, fraction: str, training: str,
                freeze: str = "linear", row: str | None = None,
                column: str | None = None) -> Cell:
    """A linear probe (or partial fine-tuning) of a pretrained encoder on a label fraction."""
    kind = "" if freeze == "linear" else f"-{freeze}"
    return Cell(f"{task}-{pretrain}-f{fraction.rstrip('%')}{kind}-{training}-s{seed}",
                "finetune", seed,
                overrides=(f"data.fraction={FRACTIONS[fraction]}", adversarial(training),
                           f"model.freeze={freeze}"),
                encoder=pretraining(task, pretrain, seed).name, row=row, column=column)


def table1(pretrain: str, seeds: tuple[int, ...]) -> list[Cell]:
    """SimCLR probes at four label fractions, the supervised baseline trained from scratch,
    and the same probe on an untrained encoder; each clean and with FGSM examples."""
    cells = []
    for seed in seeds:
        cells.append(pretraining("simclr", pretrain, seed))
        for training in TRAININGS:
            cells.append(Cell(f"supervised-{training}-s{seed}", "supervised", seed,
                              overrides=(adversarial(training),), row="supervised",
                              column=training))
            cells += [fine_tuning("simclr", pretrain, seed, fraction, training, row=fraction,
                                  column=training) for fraction in FRACTIONS]
            cells.append(Cell(f"random-f100-{training}-s{seed}", "finetune", seed,
                              overrides=("data.fraction=1.0", adversarial(training),
                                         "model.encoder_path=null"),
                              row="random encoder", column=training))
    return cells


def table2(pretrain: str, seeds: tuple[int, ...]) -> list[Cell]:
    """Each pretext task's encoder on 30% of the labels with FGSM examples: partial
    adversarial fine-tuning (the paper's Table 2) and the adversarial linear probe. SimCLR's
    probe is Table 1's cell, so it is reused, not rerun. Beyond the paper's rows: BYOL, Barlow
    Twins and MoCo v2, the same policy."""
    cells = []
    for seed in seeds:
        for task in TABLE2_ROWS:
            cells += [pretraining(task, pretrain, seed)]
            cells += [fine_tuning(task, pretrain, seed, TABLE2_FRACTION, "adv", freeze,
                                  row=task, column=freeze) for freeze in ("partial", "linear")]
    return cells


def curve(pretrain: str, seeds: tuple[int, ...], epochs: tuple[int, ...],
          supervised_epochs: tuple[int, ...]) -> list[Cell]:
    """The claim against the pretraining budget: one SimCLR run cut into segments that end at
    each of `epochs` (each continues the previous one and exports its encoder), Table 1's
    100%-label probe of every export, clean and with FGSM examples; and the supervised
    baseline trained from scratch for each of `supervised_epochs` (the same number of passes
    over the training images), clean and with FGSM examples. Row = epochs."""
    cells = []
    for seed in seeds:
        previous = None
        for epoch in epochs:
            segment = Cell(f"simclr-{pretrain}-e{epoch}-s{seed}", "pretrain", seed,
                           overrides=CURVE_PRETRAINING + (f"trainer.max_epochs={epoch}",),
                           task="simclr", row=str(epoch), continues=previous)
            cells.append(segment)
            for training in TRAININGS:
                cells.append(Cell(
                    f"simclr-{pretrain}-e{epoch}-f100-{training}-s{seed}", "finetune", seed,
                    overrides=("data.fraction=1.0", adversarial(training), "model.freeze=linear"),
                    encoder=segment.name, row=str(epoch), column=f"probe-{training}",
                    evaluate_overrides=NO_EPSILON_SWEEP))
            previous = segment.name
        for epoch in supervised_epochs:
            for training in TRAININGS:
                cells.append(Cell(
                    f"supervised-e{epoch}-{training}-s{seed}", "supervised", seed,
                    overrides=(adversarial(training), f"trainer.max_epochs={epoch}",
                               f"trainer.check_val_every_n_epoch={epoch}"),
                    row=str(epoch), column=f"supervised-{training}",
                    evaluate_overrides=NO_EPSILON_SWEEP))
    return cells


def table3(pretrain: str, seeds: tuple[int, ...], profile: str) -> list[Cell]:
    """SimCLR and adversarial SimCLR encoders under SLF, ALF and AFF on 100% of the labels.
    SimCLR's encoder and its SLF cell (Table 1's clean 100% probe) are reused, not rerun."""
    cells = []
    for seed in seeds:
        for task in TABLE3_TASKS:
            cells.append(pretraining(task, pretrain, seed))
            for policy, (training, freeze, further) in POLICIES.items():
                cell = fine_tuning(task, pretrain, seed, "100%", training, freeze, row=task,
                                   column=policy)
                if policy != "SLF":  # SLF is Table 1's clean 100% probe: the same run and name
                    budget = AFF_BUDGET.get(profile, ()) if policy.startswith("AFF") else ()
                    cell = replace(cell, name=f"{task}-{pretrain}-f100-{policy.lower()}-s{seed}",
                                   overrides=cell.overrides + further + budget)
                cells.append(cell)
    return cells


# The RobustSSL benchmark's yardstick (GodXuxilie/RobustSSL_Benchmark): SLF, ALF and AFF as
# its scripts run them, experiments/protocols/robustssl/<policy>.yaml over finetune.yaml, then
# the profile's delta; evaluated by its evaluate.yaml (PGD-20, AutoAttack, corruptions). Rows:
# encoder files of other codebases (imported, models/layouts.py) and, by default, this suite's
# SimCLR and adversarial SimCLR encoders of the profile (Table 1's and Table 3's pretraining).
ROBUSTSSL_POLICIES = ("SLF", "ALF", "AFF")
ROBUSTSSL_OURS = ("simclr", "adv_simclr")
# the protocol's cuts beyond the profile's fine-tuning delta (which cuts every policy's 25
# epochs to its own, 4 in quick): in quick, ALF's PGD-10 and AFF's TRADES-10 epochs on a CPU
# to one, and AFF's learning rate to 0.01: the quick encoders are pretrained with Adam, and
# SGD at the benchmark's 0.1 made TRADES diverge on them (loss 2.3 -> 7.1 in 100 steps, clean
# accuracy 5.5%; at 0.01: 2.0 and 23%); in smoke (code paths only) their attacks to two steps
ONE_EPOCH = ("trainer.max_epochs=1", "trainer.check_val_every_n_epoch=1")
ROBUSTSSL_BUDGET = {"quick": {"ALF": ONE_EPOCH, "AFF": ONE_EPOCH + ("model.lr=0.01",)},
                    "smoke": {policy: ("model.attack.steps=2",) for policy in ("ALF", "AFF")}}
ENCODER_OPTIONS = ("backbone", "stem", "branch", "normalize", "prefix")


@dataclass(frozen=True)
class External:
    """An encoder file of another codebase, as ENCODERS names it: `name=path[,key=value...]`
    (keys: ENCODER_OPTIONS, runs/run.py's import options)."""

    name: str
    path: str
    options: tuple[tuple[str, str], ...] = ()

    def option(self, key: str, default: str) -> str:
        return dict(self.options).get(key, default)


def parse_encoder(text: str) -> External:
    """'acl=ckpt/ACL.pt,branch=clean' -> External; one clear error for anything else."""
    name, sep, rest = text.partition("=")
    path, *options = rest.split(",")
    if not sep or not name or not path:
        raise RobustSSLError(f"ENCODERS entry {text!r} is not name=path[,key=value...]: write "
                             "e.g. ENCODERS=\"acl=checkpoints/ACL_DS.pt\"")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or name in ROBUSTSSL_OURS:
        raise RobustSSLError(f"ENCODERS name {name!r}: use letters, digits, '_', '.', '-' (a "
                             "cell directory is named after it), and none of this suite's "
                             f"encoders ({', '.join(ROBUSTSSL_OURS)})")
    pairs = []
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ENCODER_OPTIONS:
            raise RobustSSLError(f"ENCODERS option {option!r} of {name}: expected key=value "
                                 f"with key one of {', '.join(ENCODER_OPTIONS)}")
        pairs.append((key, value))
    if not Path(path).is_file():
        raise RobustSSLError(f"ENCODERS: the file of {name}, '{path}', does not exist")
    return External(name, str(Path(path).resolve()), tuple(pairs))


def robustssl(pretrain: str, seeds: tuple[int, ...], profile: str,
              encoders: tuple[External, ...] = (), ours: tuple[str, ...] = ROBUSTSSL_OURS
              ) -> list[Cell]:
    """Each encoder under SLF, ALF and AFF as the RobustSSL benchmark runs them: the imported
    files (one import cell each, whatever the seeds) and this suite's pretraining cells (the
    same as Table 1's and Table 3's, reused); row = encoder, column = policy."""
    from robust_ssl.runs.configs import pretext_tasks

    names = [e.name for e in encoders]
    if len(set(names)) != len(names):
        raise RobustSSLError(f"ENCODERS names an encoder twice: {', '.join(names)}")
    unknown = [task for task in ours if task not in pretext_tasks()]
    if unknown:
        raise RobustSSLError(f"OURS names {unknown[0]!r}, which is no pretext task: choose from "
                             f"{', '.join(pretext_tasks())}, or leave OURS empty")
    cells = [Cell(f"external-{e.name}", "import", 0, row=e.name, source=e.path,
                  overrides=tuple(f"{key}={value}" for key, value in e.options))
             for e in encoders]
    budget = ROBUSTSSL_BUDGET.get(profile, {})
    for seed in seeds:
        rows = [(task, f"{task}-{pretrain}", pretraining(task, pretrain, seed).name, ())
                for task in ours]
        rows += [(e.name, f"external-{e.name}", f"external-{e.name}",
                  (f"model.backbone={e.option('backbone', 'resnet18')}",
                   f"model.stem={e.option('stem', 'cifar')}")) for e in encoders]
        for task in ours:
            cells.append(pretraining(task, pretrain, seed))
        for row, base, encoder, architecture in rows:
            for policy in ROBUSTSSL_POLICIES:
                cells.append(Cell(f"{base}-robustssl-{policy.lower()}-s{seed}", "finetune", seed,
                                  overrides=architecture + budget.get(policy, ()),
                                  encoder=encoder, row=row, column=policy,
                                  layers=(f"robustssl/{policy.lower()}",),
                                  evaluate_layers=("robustssl/evaluate",)))
    return cells


TABLES = {"table1": table1, "table2": table2, "table3": table3, "curve": curve,
          "robustssl": robustssl}


def cells_of(table: str, pretrain_data: str, seeds: tuple[int, ...],
             epochs: tuple[int, ...] = (), supervised_epochs: tuple[int, ...] = (),
             profile: str = "paper", encoders: tuple[External, ...] = (),
             ours: tuple[str, ...] = ROBUSTSSL_OURS) -> list[Cell]:
    """A table's cells; `epochs` and `supervised_epochs` are the curve's budgets, `profile`
    sets Table 3's AFF budget and the RobustSSL protocol's cuts, `encoders` and `ours` that
    table's rows."""
    pretrain = pretrain_name(pretrain_data)
    if table == "curve":
        return curve(pretrain, tuple(seeds), budgets(epochs), budgets(supervised_epochs))
    if table == "table3":
        return table3(pretrain, tuple(seeds), profile)
    if table == "robustssl":
        return robustssl(pretrain, tuple(seeds), profile, tuple(encoders), tuple(ours))
    return TABLES[table](pretrain, tuple(seeds))


def budgets(epochs) -> tuple[int, ...]:
    """Ascending and each once: a segment continues the one before it."""
    return tuple(sorted(set(epochs)))


def command(cell: Cell, args: argparse.Namespace, table: str) -> list[str]:
    """The `python -m robust_ssl.runs.run` call of one cell."""
    results = Path(args.results)
    data_sets = ["data.resize=true"] if args.resize else []
    call = [sys.executable, "-m", "robust_ssl.runs.run", cell.stage, "--profile", args.profile,
            "--data-dir", args.data_dir, "--run-dir", str(results / cell.name),
            "--group", f"{table}-{args.profile}", "--seed", str(cell.seed)]
    if cell.stage == "import":
        call = [sys.executable, "-m", "robust_ssl.runs.run", "import", "--profile",
                args.profile, "--run-dir", str(results / cell.name), "--source", cell.source]
        call += [part for option in cell.overrides for part in ("--option", option)]
        return call + (["--restart"] if args.restart else []) + (
            ["--verify"] if getattr(args, "verify", False) else [])
    sets = list(data_sets) + list(cell.overrides)
    call += [part for layer in cell.layers for part in ("--layer", layer)]
    if cell.stage == "pretrain":
        call += ["--task", cell.task]
        sets.append(f"data.dataset={args.pretrain_data}")
    if cell.encoder is not None:
        sets.append(f"model.encoder_path={results / cell.encoder / 'encoder.pt'}")
    if cell.continues is not None:
        call += ["--continue-from", str(results / cell.continues / "checkpoints" / "last.ckpt")]
    if cell.evaluated:
        call += ["--evaluate-output", str(results / f"{cell.name}.json")]
        call += [part for layer in cell.evaluate_layers for part in ("--evaluate-layer", layer)]
        call += [part for item in data_sets + list(cell.evaluate_overrides)
                 for part in ("--evaluate-set", item)]
    call += [part for item in sets for part in ("--set", item)]
    tasks = slurm_options(args).tasks if getattr(args, "executor", "local") == "slurm" else 1
    if tasks > 1:  # one DDP rank per task, in training and in evaluation
        call += ["--set", f"trainer.devices={tasks}"]
        call += ["--evaluate-set", f"trainer.devices={tasks}"] if cell.evaluated else []
    if args.restart:
        call.append("--restart")
    if getattr(args, "verify", False):
        call.append("--verify")
    if getattr(args, "rehearse", False):
        call.append("--rehearse")
    if args.wandb:
        call += ["--wandb", args.wandb]
    return call


def run_table(args: argparse.Namespace) -> int:
    """Run the table's cells as a dependency graph through the chosen executor (each cell in a
    process of its own, launch.py, or a SLURM job, slurm.py); 1 if any cell failed, after the
    summary."""
    cells = cells_of(args.table, args.pretrain_data, seeds_of(args), *epochs_of(args),
                     profile=args.profile, **rows_of(args))
    if args.executor == "slurm":
        from robust_ssl.runs import slurm

        executor = slurm.SlurmExecutor(slurm_options(args), slurm.new_folder(Path(args.results)),
                                       dry_run=args.dry_run, held=args.held)
        if not args.dry_run and not slurm.available():
            raise RobustSSLError("EXECUTOR=slurm but no SLURM controller answers here (`sinfo` "
                                 "fails): run on a cluster's login node, or use EXECUTOR=local")
    else:
        from robust_ssl.runs.executors import LocalExecutor

        if args.dry_run:
            raise RobustSSLError("--dry-run (DRY_RUN=1) prints a SLURM submission plan: use it "
                                 "with --executor slurm (EXECUTOR=slurm)")
        executor = LocalExecutor(args.jobs, held=args.held)
        if launch.can_fork():  # the cells' OpenMP reads its settings when torch loads, here
            os.environ.update(executor.cpu_env)
            launch.warm_up(wandb=(args.wandb or os.environ.get("WANDB", "offline")) != "off")
    summary = executor.run(jobs_of(cells, args), args.table)
    if not args.dry_run:
        print(summary.text(args.table), flush=True)
    return 1 if summary.failed else 0


def slurm_options(args: argparse.Namespace):
    """The slurm executor's per-cell request: --slurm-config's YAML, then the flags."""
    from robust_ssl.runs.slurm import SlurmOptions

    options = SlurmOptions.from_yaml(args.slurm_config) if args.slurm_config else SlurmOptions()
    flags = {"partition": args.slurm_partition, "account": args.slurm_account,
             "qos": args.slurm_qos, "time_minutes": args.slurm_time,
             "gpus_per_cell": args.gpus_per_cell, "cpus_per_task": args.cpus_per_cell,
             "tasks_per_cell": args.tasks_per_cell, "mem": args.slurm_mem,
             "constraint": args.slurm_constraint, "python": args.slurm_python}
    given = {key: value for key, value in flags.items() if value is not None}
    extra = dict(options.extra)
    for item in args.slurm_option or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RobustSSLError(f"SLURM option {item!r} is not KEY=VALUE: write e.g. "
                                 "--slurm-option mail-type=END")
        extra[key.lstrip("-")] = value
    return replace(options, **given, extra=extra)


def needs(cell: Cell) -> set[str]:
    """The cells whose results this one reads: its encoder's pretraining, the segment it
    continues."""
    return {name for name in (cell.encoder, cell.continues) if name is not None}


def jobs_of(cells: list[Cell], args: argparse.Namespace) -> list:
    from robust_ssl.runs.executors import Job

    names = {cell.name for cell in cells}
    for cell in cells:
        if not needs(cell) <= names:
            raise ValueError(f"{cell.name} needs {needs(cell) - names}, which the table lacks")
    return [Job(cell.name, command(cell, args, args.table), needs(cell),
                Path(args.results) / cell.name) for cell in cells]


def rows_of(args: argparse.Namespace) -> dict:
    """The RobustSSL table's rows from --encoders and --ours (empty for the other tables)."""
    ours = getattr(args, "ours", None)
    return {"encoders": tuple(parse_encoder(text) for text in getattr(args, "encoders", None) or ()),
            "ours": ROBUSTSSL_OURS if ours is None else tuple(ours)}


def add_row_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoders", nargs="*", metavar="NAME=PATH[,KEY=VALUE]",
                   help="robustssl: encoder files of other codebases (ENCODERS=... for make); "
                   f"keys {', '.join(ENCODER_OPTIONS)}")
    p.add_argument("--ours", nargs="*", metavar="TASK",
                   help="robustssl: this suite's encoders beside them (default: "
                   f"{' '.join(ROBUSTSSL_OURS)}; none: give the flag alone)")


def seeds_of(args: argparse.Namespace) -> tuple[int, ...]:
    return tuple(args.seeds) if args.seeds else DEFAULT_SEEDS.get(args.profile, (0,))


def epochs_of(args: argparse.Namespace) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The curve's (pretraining, supervised) budgets: as given, else the profile's; in a
    rehearsal one epoch per budget (rehearsal.epochs)."""
    given = getattr(args, "epochs", None), getattr(args, "supervised_epochs", None)
    defaults = CURVE_EPOCHS.get(args.profile, ()), SUPERVISED_EPOCHS.get(args.profile, ())
    chosen = tuple(tuple(g) if g else d for g, d in zip(given, defaults))
    if getattr(args, "rehearse", False):
        from robust_ssl.runs import rehearsal

        chosen = tuple(rehearsal.epochs(budgets(b)) for b in chosen)
    return chosen


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed {value} is negative: seeds are 0, 1, 2, ...")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} epochs: a budget is 1 epoch or more")
    return value


def positive_jobs(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"JOBS={value}: run at least one cell at a time")
    return value


def count(minimum: int, what: str):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} {what}: give {minimum} or more")
        return value
    return parse


positive_minutes = count(1, "minutes")
positive_count = count(1, "per cell")
non_negative_count = count(0, "per cell")


def add_budget_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive, nargs="*",
                   help="curve: SimCLR's pretraining epochs at which its encoder is probed "
                   f"(default per profile: {CURVE_EPOCHS})")
    p.add_argument("--supervised-epochs", type=positive, nargs="*",
                   help="curve: the supervised baseline's training budgets "
                   f"(default per profile: {SUPERVISED_EPOCHS})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m robust_ssl.runs.grid",
                                description=__doc__.splitlines()[0])
    p.add_argument("table", choices=sorted(TABLES))
    p.add_argument("--profile", required=True)
    p.add_argument("--results", required=True, help="the profile's results directory")
    add_table_arguments(p)
    return p


def add_table_arguments(p: argparse.ArgumentParser) -> None:
    """Everything a table's run takes but its name, profile and results directory."""
    p.add_argument("--data-dir", default="data")
    p.add_argument("--pretrain-data", default="cifar100")
    p.add_argument("--seeds", type=non_negative, nargs="*",
                   help="default: 0 1 2 for the paper profile, 0 otherwise")
    add_budget_arguments(p)
    add_row_arguments(p)
    p.add_argument("--resize", action="store_true")
    p.add_argument("--restart", action="store_true")
    p.add_argument("--verify", action="store_true", help="check finished cells' files against "
                   "their SHA-256 on record, not only sizes and times (VERIFY=1 for make)")
    p.add_argument("--rehearse", action="store_true", help="every cell cut to a couple of "
                   "batches, under its own results root (REHEARSE=1 for make)")
    p.add_argument("--wandb", choices=("offline", "online", "off"))
    p.add_argument("--jobs", type=positive_jobs, default=1,
                   help="cells at once (JOBS=N for make): each on its own GPU, or a share of "
                   "the CPU cores")
    add_executor_arguments(p)


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="local: this machine (--jobs at once); slurm: every cell a SLURM job "
                   "through submitit, after the cells it needs (EXECUTOR=slurm for make)")
    p.add_argument("--dry-run", action="store_true",
                   help="slurm: print the plan (cells, dependencies, resources), submit nothing")
    p.add_argument("--held", choices=("wait", "skip"), default="wait",
                   help="a cell another process holds (a second grid on this results tree, a "
                   "SLURM job, a hand-run cell): wait for it and read it as up to date, or "
                   "skip it and the cells that need it (HELD=skip for make)")
    slurm = p.add_argument_group("slurm executor (each cell's request; default: the cluster's)")
    slurm.add_argument("--slurm-config", metavar="YAML",
                       help="the options below as a YAML mapping (flags override it): partition, "
                       "account, qos, time_minutes, gpus_per_cell, cpus_per_task, "
                       "tasks_per_cell, mem, constraint, extra")
    slurm.add_argument("--slurm-partition")
    slurm.add_argument("--slurm-account")
    slurm.add_argument("--slurm-qos")
    slurm.add_argument("--slurm-time", type=positive_minutes, metavar="MINUTES",
                       help="each cell's time limit (default 240); a cell still running then is "
                       "requeued and resumes from its checkpoint")
    slurm.add_argument("--gpus-per-cell", type=non_negative_count)
    slurm.add_argument("--cpus-per-cell", type=positive_count, help="CPUs per task (its torch "
                       "threads)")
    slurm.add_argument("--tasks-per-cell", type=positive_count, help="DDP ranks per cell "
                       "(default: one per GPU, else 1)")
    slurm.add_argument("--slurm-mem", metavar="SIZE", help="memory per cell, e.g. 32G")
    slurm.add_argument("--slurm-constraint")
    slurm.add_argument("--slurm-python", metavar="COMMAND",
                       help="how each job starts Python, e.g. \"apptainer exec --nv "
                       "robust-ssl.sif python\" to run the cells in the suite's container "
                       "(SLURM_PYTHON for make)")
    slurm.add_argument("--slurm-option", action="append", metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. mail-type=END (repeatable)")


def main(argv: list[str] | None = None) -> None:
    from robust_ssl.errors import exit_on_user_error

    with exit_on_user_error():
        sys.exit(run_table(parser().parse_args(argv)))


if __name__ == "__main__":
    main()
