"""The experiment configs: one base YAML per stage (the paper's settings) and a short delta per
profile, merged as LightningCLI merges repeated `--config` files, so that

    robust-ssl fit --config experiments/base/simclr.yaml --config experiments/quick/simclr.yaml

runs what `python -m robust_ssl.runs.run pretrain --profile quick` runs: mappings merge key by key,
a subclass's `init_args` merge while its `class_path` stays the same, and lists (callbacks,
tasks) are replaced whole. The YAMLs name no output paths: run.py routes them, recognising
callbacks by their class, however the class path is spelled.

A protocol (experiments/protocols/<name>/<part>.yaml, e.g. the RobustSSL benchmark's) is a
layer between the base and the profile's delta: the protocol's settings over the paper's, and
the profile's cuts (epochs, test images, device) over both.
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import yaml

from robust_ssl.errors import RobustSSLError

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
BASE = EXPERIMENTS / "base"
PROTOCOLS = EXPERIMENTS / "protocols"
NOT_PRETEXT = {"finetune", "supervised", "evaluate"}
# an attack's budget: swapping FGSM for PGD by an override keeps the ε the config gave
KEPT_ACROSS_CLASSES = ("eps",)
# where a callback class given by its name alone is looked up (as LightningCLI does)
CALLBACK_MODULES = ("pytorch_lightning.callbacks", "robust_ssl.pretrain")


def profiles() -> list[str]:
    """`paper` is the base alone; every other folder of experiments/ is a delta."""
    return ["paper"] + sorted(p.name for p in EXPERIMENTS.iterdir()
                              if p.is_dir() and p.name not in ("base", PROTOCOLS.name))


def pretext_tasks() -> list[str]:
    """The pretext tasks with a base YAML: adding a task is adding its YAML."""
    return sorted(p.stem for p in BASE.glob("*.yaml") if p.stem not in NOT_PRETEXT)


def config_files(profile: str, name: str, layers: tuple[str, ...] = ()) -> list[Path]:
    """The YAMLs of one stage (or pretext task) in a profile, base first, then `layers`
    (protocol parts, "robustssl/alf" = experiments/protocols/robustssl/alf.yaml), then the
    profile's delta."""
    if profile not in profiles():
        raise RobustSSLError(f"profile {profile!r} unknown: choose one of {', '.join(profiles())}")
    files = [BASE / f"{name}.yaml"] + [protocol_file(layer) for layer in layers]
    delta = EXPERIMENTS / profile / f"{name}.yaml"
    return files + ([delta] if profile != "paper" and delta.is_file() else [])


def protocol_file(layer: str) -> Path:
    path = PROTOCOLS / f"{layer}.yaml"
    if not path.is_file():
        known = sorted(str(p.relative_to(PROTOCOLS).with_suffix("")) for p in PROTOCOLS.rglob("*.yaml"))
        raise RobustSSLError(f"protocol layer {layer!r} unknown: choose one of {', '.join(known)}")
    return path


def load(profile: str, name: str, layers: tuple[str, ...] = ()) -> dict:
    config: dict = {}
    for path in config_files(profile, name, layers):
        config = merged(config, yaml.safe_load(path.read_text()) or {})
    return config


def merged(base: dict, delta: dict) -> dict:
    """`delta` over `base`, as jsonargparse applies a second config file."""
    out = copy.deepcopy(base)
    for key, value in delta.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            if "class_path" in value and value["class_path"] != old.get("class_path"):
                out[key] = copy.deepcopy(value)  # another class: its own arguments only
            else:
                out[key] = merged(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_class(class_path: str, modules: tuple[str, ...] = CALLBACK_MODULES) -> type:
    """The class a config names, by its full path or (as LightningCLI allows) its name alone."""
    if "." in class_path:
        module, _, name = class_path.rpartition(".")
        candidates = [(module, name)]
    else:
        candidates = [(module, class_path) for module in modules]
    for module, name in candidates:
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            found = None
        if isinstance(found, type):
            return found
    raise RobustSSLError(f"class {class_path!r} in the config cannot be imported: give its full "
                         "path, e.g. pytorch_lightning.callbacks.ModelCheckpoint")


def apply_overrides(config: dict, overrides: list[str]) -> None:
    """`key=value` with dotted keys that address init_args directly (data.fraction,
    model.adversarial, model.attack.steps, trainer.max_epochs) or a top-level key
    (seed_everything). Values are YAML: 0.1, true, null, cifar10 all mean what they say.
    `<key>.class_path=...` swaps a nested class (model.attack.class_path=robust_ssl.attacks.PGD):
    as with a second config file, the new class keeps none of the old one's arguments but those
    in KEPT_ACROSS_CLASSES. LightningCLI's spelled-out form (model.init_args.adversarial) means
    the same."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RobustSSLError(f"--set {item!r}: expected key=value, e.g. data.fraction=0.1")
        *path, last = [part for part in key.split(".") if part != "init_args"]
        node = config
        for depth, part in enumerate(path, 1):
            node = node.setdefault(part, {})
            if "init_args" in node and not (last == "class_path" and depth == len(path)):
                node = node["init_args"]
        parsed = yaml.safe_load(value)
        if last == "class_path" and node.get("class_path") not in (None, parsed):
            node["init_args"] = {k: v for k, v in node.get("init_args", {}).items()
                                 if k in KEPT_ACROSS_CLASSES}
        node[last] = parsed
