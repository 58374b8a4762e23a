"""A run directory belongs to one configuration: its results are never taken for another's.

Each stage of a run directory records the fingerprint of what it computes: the resolved config
(less the keys that only say where logs go) and a hash of every input file it reads (the
encoder, the classifier). A rerun with the same fingerprint resumes or reuses; a rerun with
another stops with the differing keys, unless asked to restart, which first deletes the stage's
outputs. So a resumed checkpoint or a finished result always comes from the config on record.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from robust_ssl.errors import RobustSSLError
from robust_ssl.plumbing.files import sha256

# Keys that change where a run reports, not what it computes.
UNTRACKED = ("trainer.logger", "trainer.enable_progress_bar")
# Classes that moved when the package got its layers: a fingerprint on record that names the
# old path is the same config as one naming the new path.
MOVED_CLASSES = {
    "robust_ssl.evaluate.AdversarialEvaluator":
        "robust_ssl.evaluation.evaluator.AdversarialEvaluator",
}
# config keys whose values are paths (recorded relative to the results root), and how
RESULTS, PATH_KEYS = "<results>", ("default_root_dir", "dirpath", "path", "encoder_path",
                                   "checkpoint", "output", "save_dir")
# what the SimCLR class passed on to its one SimCLRTask
SIMCLR_TASK_ARGUMENTS = ("projection_hidden_dim", "projection_dim", "temperature",
                         "gather_distributed", "views")


def flatten(node, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": [1, 2]}} -> {"a.b.0": 1, "a.b.1": 2}."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return {prefix: node}
    flat: dict[str, object] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    if not flat and prefix:
        flat[prefix] = node  # an empty dict or list is a value of its own
    return flat


def file_hash(path: str | os.PathLike) -> str:
    """An input file's SHA-256, cut to 16 hex digits as fingerprints have always held it."""
    return sha256(path)[:16]


def fingerprint(config: dict, inputs: dict[str, str | None], root: str | None = None,
                data: str | None = None) -> dict[str, object]:
    """What a stage computes: its config less UNTRACKED keys, plus its input files' hashes.

    With `root` (the results root) and `data` (sources.data_identity of the stage's data) it is
    relocatable: paths under the root are recorded relative to it, and the data by what it is
    instead of where DATA_DIR points, so a results tree moved to another folder or machine
    still matches."""
    flat = {key: value for key, value in flatten(config).items()
            if not key.startswith(UNTRACKED)}
    if root is not None:
        flat = relative_paths(flat, root)
    if data is not None:
        flat = named_data(flat, data)
    for name, path in inputs.items():
        if path is not None and Path(path).is_file():
            flat[f"sha256({name})"] = file_hash(path)
    return flat


def results_root(run_dir: str | os.PathLike) -> str:
    """A run directory's results root: the folder that holds it (the grid's layout)."""
    return os.path.dirname(os.path.abspath(run_dir))


def relative_paths(flat: dict, root: str) -> dict:
    """Values of PATH_KEYS under `root` as `<results>/...`."""
    root = os.path.abspath(root)
    out = {}
    for key, value in flat.items():
        if isinstance(value, str) and key.rpartition(".")[2] in PATH_KEYS:
            path = os.path.abspath(value)
            if os.path.commonpath([path, root]) == root:
                value = RESULTS + "/" + os.path.relpath(path, root).replace(os.sep, "/")
        out[key] = value
    return out


def named_data(flat: dict, data: str) -> dict:
    """The data directory replaced by the data's identity; a dataset given as a folder's path
    by the folder's name (its identity says what is in it)."""
    out = dict(flat)
    if "data.init_args.data_dir" in out:
        del out["data.init_args.data_dir"]
        out["data.identity"] = data
        dataset = out.get("data.init_args.dataset")
        if isinstance(dataset, str) and ("/" in dataset or os.sep in dataset):
            out["data.init_args.dataset"] = f"folder:{os.path.basename(os.path.normpath(dataset))}"
    return out


EVALUATOR = "robust_ssl.evaluation.evaluator.AdversarialEvaluator"


def migrated(stored: dict, root: str | None = None, data: str | None = None) -> dict:
    """A fingerprint on record, in today's spelling: moved classes (MOVED_CLASSES), the SimCLR
    pretrainer as the Pretrainer with one SimCLRTask, the FineTuner's training attack as an
    object, the evaluator's ε convention (pixel, before it had a name), and (given `root` and
    `data`, as `fingerprint` takes them) absolute paths and the data directory of records made
    before fingerprints were relocatable. Each rewrite is the one the configs went through, so
    an old record equals the new config's fingerprint exactly when the old config equals the
    new one. (A new option that no YAML sets is in no fingerprint: nothing to migrate.) Old
    records named the data by its directory alone: they are taken to mean the data found
    there now."""
    flat = {key: MOVED_CLASSES.get(value, value)
            if key.endswith("class_path") and isinstance(value, str) else value
            for key, value in stored.items()}
    model = "model.init_args."
    if flat.get("model.class_path") == "robust_ssl.pretrain.SimCLR":
        flat["model.class_path"] = "robust_ssl.pretrain.Pretrainer"
        flat[f"{model}tasks.0.class_path"] = "robust_ssl.pretrain.SimCLRTask"
        for name in SIMCLR_TASK_ARGUMENTS:
            if f"{model}{name}" in flat:
                flat[f"{model}tasks.0.init_args.{name}"] = flat.pop(f"{model}{name}")
    if flat.get("model.class_path") == "robust_ssl.finetune.FineTuner" and f"{model}eps" in flat:
        kind = flat.pop(f"{model}attack", "fgsm")
        steps, random_start = flat.pop(f"{model}attack_steps", None), flat.pop(
            f"{model}random_start", None)
        attack = f"{model}attack."
        flat[f"{attack}class_path"] = f"robust_ssl.attacks.{kind.upper()}"
        flat[f"{attack}init_args.eps"] = flat.pop(f"{model}eps")
        if kind == "fgsm" and random_start is not None:
            flat[f"{attack}init_args.random_start"] = random_start
        if kind == "pgd" and steps is not None:
            flat[f"{attack}init_args.steps"] = steps
    if (flat.get("model.class_path") == EVALUATOR and f"{model}eps" in flat
            and f"{model}eps_space" not in flat):
        flat[f"{model}eps_space"] = "pixel"  # what every evaluation ran before it was named
    old_root = flat.get("trainer.default_root_dir")
    if root is not None and isinstance(old_root, str) and not old_root.startswith(RESULTS):
        flat = relative_paths(flat, os.path.dirname(os.path.abspath(old_root)))
    if data is not None and "data.identity" not in flat:
        flat = named_data(flat, data)
    return flat


def differences(old: dict, new: dict, shown: int = 8) -> str:
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k, "<unset>") != new.get(k, "<unset>"))
    parts = [f"{k}: {json.dumps(old.get(k, '<unset>'))} -> {json.dumps(new.get(k, '<unset>'))}"
             for k in keys[:shown]]
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return "; ".join(parts) + more


def ensure_writable(folder: Path) -> None:
    """Create `folder` and prove it writable before any training, not after an hour of it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise RobustSSLError(f"cannot write to '{folder}' ({error.strerror or error}): choose a "
                             "writable results directory (RESULTS=... for make, --run-dir)") from None


def claim(run_dir: Path, record: str, current: dict, outputs: list[Path], restart: bool,
          logs: list[Path] = (), root: str | None = None, data: str | None = None) -> bool:
    """Make sure that `run_dir`'s outputs for this stage can only come from `current`.

    Outputs made under another fingerprint (or under none on record) stop the run before
    anything is overwritten, or with `restart` are deleted; `logs` of another fingerprint are
    deleted either way. The caller then writes its config file and, last, the record: a kill
    in between never leaves a record beside a stale config. Returns whether the record on
    file is `current` (so the outputs there are this config's). `root` and `data` migrate a
    record made before fingerprints were relocatable (see `migrated`).
    """
    record_path = run_dir / record
    stored, damage = read_record(record_path)
    if stored is not None:
        stored = migrated(stored, root, data)
    if stored == current:
        return True
    existing = [path for path in outputs if path.exists()]
    if existing and not restart:
        what = (f"differs in {differences(stored, current)}" if stored is not None
                else damage or "is missing")
        raise RobustSSLError(
            f"run directory '{run_dir}' holds {', '.join(p.name for p in existing)} from "
            f"another configuration: its record {record} {what}. Use a new run directory, or "
            "restart this one from scratch with --restart (RESTART=1 for make), which deletes "
            "those outputs")
    delete(existing + [path for path in logs if path.exists()])
    return False


def delete(paths: list[Path]) -> None:
    """Remove each of `paths` that exists, folders with what they hold."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def read_record(path: Path) -> tuple[dict | None, str | None]:
    """(the fingerprint on record, None) or (None, what is wrong with it): a record that is
    missing or damaged vouches for nothing."""
    if not path.is_file():
        return None, None
    try:
        stored = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return None, "is damaged (not JSON)"
    return (stored, None) if isinstance(stored, dict) else (None, "is damaged (not a JSON object)")


def record_text(current: dict) -> str:
    return json.dumps(current, indent=1, sort_keys=True, default=str) + "\n"


def check_resumable(checkpoint: Path) -> None:
    """A checkpoint that cannot be read would fail every rerun: name it and the way out."""
    import torch

    try:
        torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        raise RobustSSLError(
            f"checkpoint '{checkpoint}' is damaged ({type(error).__name__}): delete it, and "
            "the rerun starts this stage from its beginning"
        ) from None
