import argparse
import json
from pathlib import Path

import pytest

from robust_ssl.plumbing.files import write_text_atomically
from robust_ssl.runs import grid, rundir
from robust_ssl.errors import RobustSSLError

CONFIG = {"trainer": {"max_epochs": 2, "logger": [{"class_path": "CSVLogger"}],
                      "callbacks": [{"class_path": "C", "init_args": {"k": 5}}]},
          "model": {"init_args": {"adversarial": True, "encoder_path": None}},
          "data": {"init_args": {"fraction": 0.1}}}


def test_fingerprint_tracks_what_is_computed_not_where_it_is_logged(tmp_path):
    flat = rundir.fingerprint(CONFIG, {})
    assert flat["data.init_args.fraction"] == 0.1 and flat["trainer.callbacks.0.init_args.k"] == 5
    assert not any(key.startswith("trainer.logger") for key in flat)
    encoder = tmp_path / "encoder.pt"
    encoder.write_bytes(b"weights 1")
    first = rundir.fingerprint(CONFIG, {"model.encoder_path": str(encoder)})
    encoder.write_bytes(b"weights 2")  # same path, other contents: another computation
    assert rundir.fingerprint(CONFIG, {"model.encoder_path": str(encoder)}) != first


def test_claim_refuses_results_of_another_config_and_restart_deletes_them(tmp_path):
    result = tmp_path / "classifier.ckpt"
    old = rundir.fingerprint(CONFIG, {})
    rundir.claim(tmp_path, "config.fingerprint.json", old, [result], restart=False)
    (tmp_path / "config.fingerprint.json").write_text(rundir.record_text(old))
    result.write_bytes(b"trained")
    rundir.claim(tmp_path, "config.fingerprint.json", old, [result], restart=False)  # same: fine
    new = dict(old, **{"data.init_args.fraction": 1.0})
    with pytest.raises(RobustSSLError) as error:
        rundir.claim(tmp_path, "config.fingerprint.json", new, [result], restart=False)
    assert "data.init_args.fraction: 0.1 -> 1.0" in str(error.value)
    assert "new run directory" in str(error.value) and "--restart" in str(error.value)
    assert result.read_bytes() == b"trained"
    assert json.loads((tmp_path / "config.fingerprint.json").read_text()) == old
    rundir.claim(tmp_path, "config.fingerprint.json", new, [result], restart=True)
    assert not result.exists()


def test_write_atomically_keeps_the_time_stamp_of_unchanged_files(tmp_path):
    path = tmp_path / "config.yaml"
    write_text_atomically(path, "a: 1\n")
    stamp = path.stat().st_mtime_ns
    write_text_atomically(path, "a: 1\n")
    assert path.stat().st_mtime_ns == stamp
    write_text_atomically(path, "a: 2\n")
    assert path.read_text() == "a: 2\n" and not list(tmp_path.glob("*.partial"))


LEGACY = Path(__file__).parent / "data"


@pytest.mark.parametrize("cell, stage, record", [
    ("simclr-cifar100-s0", "pretrain", "c0e8729-pretrain-config"),
    ("simclr-cifar100-f10-adv-s0", "finetune", "c0e8729-finetune-config"),
    ("simclr-cifar100-f10-adv-s0", "evaluate", "c0e8729-finetune-evaluate")])
def test_fingerprints_recorded_before_the_package_had_layers_still_match(cell, stage, record):
    """Records written by c0e8729 (the smoke Table 1, before the move) equal what today's code
    resolves for the same cell, once migrated: such a results tree reads as up to date. Input
    hashes are left out: they depend on the files, not on the code."""
    from robust_ssl.runs import grid, run

    args = argparse.Namespace(profile="smoke", results="/legacy/results/smoke", data_dir="/legacy/data",
                              pretrain_data="cifar100", resize=False, restart=False,
                              wandb="off")
    cells = {c.name: c for c in grid.cells_of("table1", "cifar100", (0,), profile="smoke")}
    parsed = run.parser().parse_args(grid.command(cells[cell], args, "table1")[3:])
    if stage == "evaluate":
        parsed = run.evaluation_of(parsed)
    config = run.resolve(parsed, Path(parsed.run_dir))
    current = rundir.fingerprint(config, run.input_files(parsed, config))
    stored = json.loads((LEGACY / f"{record}.fingerprint.json").read_text())
    stored = {k: v for k, v in stored.items() if not k.startswith("sha256(")}
    assert rundir.migrated(stored) == without_new_settings(current)


# What evaluations compute beyond c0e8729's: FGSM and PGD-20 in the normalised ε convention,
# that PGD on the images the first two left right. An evaluation of then is not up to date
# (RESTART=1 evaluates it again; its training stays).
NEW_EVALUATION_SETTINGS = {"model.init_args.normalized_attacks.0": "fgsm",
                           "model.init_args.normalized_attacks.1": "pgd",
                           "model.init_args.normalized_pgd_on": "survivors"}


def without_new_settings(today: dict) -> dict:
    if today.get("model.class_path") != rundir.EVALUATOR:
        return today
    for name, value in NEW_EVALUATION_SETTINGS.items():
        assert today.get(name) == value
    return {k: v for k, v in today.items() if k not in NEW_EVALUATION_SETTINGS}


def resolved_stages(profile: str, table: str, results: str = "/legacy/results",
                    data_dir: str = "/legacy/data", **relocatable) -> dict[str, dict]:
    """Today's fingerprint of every stage of a table's cells (no run), as the legacy file
    holds them: "<profile>/<cell>/<stage>". `relocatable`: fingerprint's root and data."""
    from robust_ssl.runs import grid, run

    args = argparse.Namespace(profile=profile, results=f"{results}/{profile}",
                              data_dir=data_dir, pretrain_data="cifar10", resize=False,
                              restart=False, wandb="off")
    budgets = grid.epochs_of(argparse.Namespace(profile=profile))
    found = {}
    for cell in grid.cells_of(table, "cifar10", (0,), *budgets, profile=profile):
        parsed = run.parser().parse_args(grid.command(cell, args, table)[3:])
        stages = [parsed] + ([run.evaluation_of(parsed)] if cell.evaluated else [])
        for stage in stages:
            config = run.resolve(stage, Path(stage.run_dir))
            found[f"{profile}/{cell.name}/{stage.stage}"] = rundir.fingerprint(
                config, run.input_files(stage, config), **relocatable)
    return found


@pytest.mark.parametrize("profile", ["paper", "quick", "smoke"])
def test_every_stage_c0e8729_resolved_still_matches_once_migrated(profile):
    """All 282 stages of Tables 1-3 and the curve in every profile, as c0e8729 resolved them
    (before the layers, the SimCLR class and the FineTuner's attack object): each equals
    today's resolution once migrated, so no finished cell of that commit is redone."""
    legacy = json.loads((LEGACY / "c0e8729-all-stages.fingerprints.json").read_text())
    today = {}
    for table in ("table1", "table2", "table3", "curve"):
        today |= resolved_stages(profile, table)
    mine = {k: v for k, v in legacy.items() if k.startswith(f"{profile}/")}
    assert set(mine) <= set(today)  # every stage of then; since then AFF-TRADES, Table 2's new rows
    new = ("-aff-trades-",) + tuple(f"/{task}-" for task in grid.BEYOND_PAPER_TASKS)
    assert all(any(part in k for part in new) for k in set(today) - set(mine))
    different = [k for k in mine if rundir.migrated(mine[k]) != without_new_settings(today[k])]
    assert not different, different[:5]


def test_a_c0e8729_tree_moved_elsewhere_migrates_to_relocatable_fingerprints():
    """The same records, read by a tree moved to /moved with its data at /copied: their
    absolute paths become relative to the root they were made under, their data directory
    the data's identity, and each equals today's relocatable fingerprint at the new place."""
    legacy = json.loads((LEGACY / "c0e8729-all-stages.fingerprints.json").read_text())
    root, data = "/moved/results/smoke", "ImageFolder:0123456789abcdef"
    today = {}
    for table in ("table1", "table2", "table3", "curve"):
        today |= resolved_stages("smoke", table, "/moved/results", "/copied/data", root=root,
                                 data=data)
    smoke = [k for k in legacy if k.startswith("smoke/")]
    different = [k for k in smoke
                 if rundir.migrated(legacy[k], root, data) != without_new_settings(today[k])]
    assert not different, different[:5]
    evaluation = today["smoke/simclr-cifar10-f10-adv-s0/evaluate"]
    assert evaluation["model.init_args.checkpoint"] == "<results>/simclr-cifar10-f10-adv-s0/classifier.ckpt"
    assert evaluation["data.identity"] == data and "data.init_args.data_dir" not in evaluation
    assert not any("/moved" in str(v) or "/legacy" in str(v) for v in evaluation.values())
