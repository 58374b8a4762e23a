"""W&B as the dashboard: what each stage's run says about itself and what joins the runs.

Each run carries its cell's keys as config (`cell.table`, `cell.profile`, `cell.seed`,
`cell.pretext`, `cell.fraction`, `cell.policy`, `cell.training`, `cell.eps_space`, ...), so the
table view filters and groups by them, and the same values as tags. The files a stage leaves
are W&B artifacts, and the stage that reads one uses it, so the lineage graph runs
pretraining → fine-tuning → evaluation → table:

- encoder (`<profile>-<cell>-encoder`) and classifier (`...-classifier`): by reference by
  default (path and checksum, nothing uploaded: a ResNet-18 is 45 MB a file, a table has
  dozens); `MODEL_ARTIFACTS=upload` uploads them;
- result (`...-result`): the result JSON, its per-image records and the adversarial-example
  panel, uploaded (kilobytes);
- table (`<profile>-<table>`): the report's files, from a run that uses every cell's result.

Offline runs (the default, and the rule on compute nodes) are synced later with `wandb sync`.
wandb refuses `use_artifact` offline, so a use is written as its online path writes it for an
artifact not yet logged: the same artifact, logged as an input (`use_after_commit`), which
`wandb sync` replays; the consumer builds it from the same files, so it has the producer's
digest. Staged artifact files go into the run's own folder (WANDB_DATA_DIR), so a results
tree copied to a login node syncs whole.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from robust_ssl.errors import RobustSSLError
from robust_ssl.evaluation.examples import panel_path
from robust_ssl.evaluation.result import budgets, eps_value, key, read_result, records_path

MODEL_FILES = ("reference", "upload")
PROJECT = "robust-ssl"


def model_files() -> str:
    mode = os.environ.get("MODEL_ARTIFACTS", "reference")
    if mode not in MODEL_FILES:
        raise RobustSSLError(f"MODEL_ARTIFACTS={mode!r}: choose reference (the default: path "
                             "and checksum) or upload")
    return mode


def stage_keys(stage: str, profile: str, group: str, run_dir: Path, config: dict) -> dict:
    """The keys a run is filtered by that its config says, before it starts."""
    model = config.get("model", {}).get("init_args", {})
    keys = {"table": group.removesuffix(f"-{profile}") if group != profile else None,
            "profile": profile, "stage": stage, "cell": run_dir.name,
            "seed": config.get("seed_everything")}
    if stage in ("finetune", "supervised"):
        keys |= training_keys(config)
    elif stage == "evaluate":
        trained = run_dir / "config.yaml"  # the fine-tuning's, in the same run directory
        if trained.is_file():
            keys |= training_keys(yaml.safe_load(trained.read_text()))
        keys["eps_space"] = model.get("eps_space", "pixel")  # the evaluation's own
    return keys


def training_keys(config: dict) -> dict:
    model = config["model"].get("init_args", {})
    attack = (model.get("attack") or {}).get("init_args", {})
    return {"fraction": config.get("data", {}).get("init_args", {}).get("fraction"),
            "policy": model.get("freeze"), "training": "adv" if model.get("adversarial")
            else "clean", "eps_space": attack.get("eps_space", "pixel")}


def tags_of(keys: dict) -> list[str]:
    chosen = [keys.get(k) for k in ("table", "profile", "stage", "pretext", "training")]
    return [str(t) for t in chosen if t] + ([f"seed{keys['seed']}"]
                                             if keys.get("seed") is not None else [])


def logger_arguments(keys: dict) -> dict:
    """The WandbLogger's init_args beyond project, name and folder."""
    return {"tags": tags_of(keys), "config": {"cell": keys}}


def artifact(name: str, kind: str, files: list[Path], metadata: dict | None = None,
             upload: bool = True):
    """The same artifact for the run that writes the files and every run that reads them."""
    import wandb

    made = wandb.Artifact(name, type=kind, metadata=metadata or {})
    for path in files:
        if upload:
            made.add_file(str(path), name=path.name)
        else:
            made.add_reference(Path(path).resolve().as_uri(), name=path.name)
    return made


def use(run, made) -> None:
    """`run` reads `made` (see the module's docstring for the offline case)."""
    if run.settings._offline:
        run._log_artifact(made, is_user_created=True, use_after_commit=True)
    else:
        run.use_artifact(made)


def model_artifact(profile: str, cell: str, kind: str, path: Path, metadata: dict | None = None):
    return artifact(f"{profile}-{cell}-{kind}", kind, [path], metadata,
                    upload=model_files() == "upload")


def result_artifact(profile: str, output: Path):
    """A result JSON with its records and its example panel, where they are."""
    files = [p for p in (output, records_path(output), panel_path(output)) if p.is_file()]
    return artifact(f"{profile}-{output.stem}-result", "result", files)


def eps_points(metrics: dict[str, float]) -> list[list]:
    """[ε (/255), accuracy (%), attack] of every FGSM and PGD budget in `metrics`."""
    rows = []
    for attack in ("fgsm", "pgd"):
        for budget in budgets(metrics, attack):
            name = key(attack, eps_value(budget))
            if name in metrics:
                rows.append([255 * eps_value(budget), 100 * metrics[name], attack])
    return sorted(rows, key=lambda r: (r[2], r[0]))


def eps_plot(rows: list[list], title: str, series: str = "attack"):
    """A W&B line plot of accuracy against ε, one line per `series` value."""
    import wandb

    table = wandb.Table(columns=["eps (/255)", "accuracy (%)", series], data=rows)
    return wandb.plot.line(table, "eps (/255)", "accuracy (%)", stroke=series, title=title)


def wandb_run(trainer):
    """The stage's live W&B run, or None where W&B is off."""
    from pytorch_lightning.loggers import WandbLogger

    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            return logger.experiment
    return None


def finish(failed: bool) -> None:
    """End this stage's W&B run, if one is open: a forked cell leaves by os._exit, which
    skips wandb's own finish at exit (the run's file would stay empty), and the next stage
    of the same process must get a run of its own."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.run.finish(exit_code=1 if failed else 0)


def record_stage(trainer, model, stage: str, profile: str, run_dir: Path, config: dict,
                 output: Path | None) -> None:
    """At the end of a stage: the keys only its outcome knows, its inputs and outputs as
    artifacts, and for an evaluation its ε curve and example panel."""
    run = wandb_run(trainer)
    if run is None:
        return
    cell = run_dir.name
    init = config["model"].get("init_args", {})
    keys = dict(run.config.get("cell", {}))
    if stage == "pretrain":
        keys["pretext"] = getattr(model, "pretext_name", None)
        encoder = run_dir / "encoder.pt"
        if encoder.is_file():
            run.log_artifact(model_artifact(profile, cell, "encoder", encoder,
                                            {"pretext": keys["pretext"]}))
    elif stage in ("finetune", "supervised"):
        keys["pretext"] = (getattr(model, "pretraining", None) or {}).get("pretext")
        if init.get("encoder_path"):
            source = Path(init["encoder_path"])
            use(run, model_artifact(profile, source.parent.name, "encoder", source))
        classifier = run_dir / "classifier.ckpt"
        if classifier.is_file():
            run.log_artifact(model_artifact(profile, cell, "classifier", classifier))
    elif stage == "evaluate" and output is not None and output.is_file():
        result = read_result(output)
        keys["pretext"] = (result.data.get("pretraining") or {}).get("pretext")
        if init.get("checkpoint"):
            checkpoint = Path(init["checkpoint"])
            use(run, model_artifact(profile, checkpoint.parent.name, "classifier", checkpoint))
        logged = {"eps_curve": eps_plot(eps_points(result.sweep), f"{cell}: accuracy on the "
                                        "ε-sweep subset")}
        if panel_path(output).is_file():
            import wandb

            logged["examples"] = wandb.Image(str(panel_path(output)),
                                             caption="clean, FGSM and PGD-20 at the table's ε")
        run.log(logged)
        run.log_artifact(result_artifact(profile, output))
    run.config.update({"cell": keys}, allow_val_change=True)
    run.tags = tuple(dict.fromkeys([*run.tags, *tags_of(keys)]))
