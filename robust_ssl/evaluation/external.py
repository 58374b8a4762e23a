"""Any classifier under the suite's evaluation protocol, and a suite classifier for others' tools.

`robust-ssl evaluate-model` loads a model that is not a FineTuner (a TorchScript file; a
state_dict with an importable constructor; a torchvision classification model by name with a
weights file), wraps it so that it takes [0, 1] pixels at the data's size (its normalisation and
resizing inside, so attacks perturb pixels and ε is in pixel units), checks it against the data
and runs the AdversarialEvaluator on it: the same JSON as a table cell, and on request a
RobustBench-style record. `robust-ssl export` writes a finished cell's classifier as TorchScript
or as a state_dict for torchvision's resnet18, so that it needs nothing of this suite.

    robust-ssl export results/quick/supervised-adv-s0/classifier.ckpt model.pt
    robust-ssl evaluate-model --torchscript model.pt --data-dir data --output model.json
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from robust_ssl.attacks import EPS_SPACES
from robust_ssl.data.modules import LabeledDataModule, check_classes
from robust_ssl.errors import RobustSSLError, exit_on_user_error
from robust_ssl.plumbing.files import replace_atomically, save_atomically
from robust_ssl.evaluation.classifier import load_classifier
from robust_ssl.evaluation.evaluator import ATTACKS, PGD_IMAGES, AdversarialEvaluator
from robust_ssl.evaluation.examples import panel_path
from robust_ssl.evaluation.result import budget_key, read_result

FORMATS = ("torchscript", "state_dict")
STATE_DICT_FORMAT = "robust-ssl-classifier-state-dict"
CONSTRUCTOR = "robust_ssl.evaluation.external:torchvision_classifier"
TORCHVISION_BACKBONES = ("resnet18", "resnet50")  # the WideResNets have no torchvision form
# what older exports record as their constructor (before the package had layers; ResNet-18 only)
LEGACY_CONSTRUCTORS = {"robust_ssl.external:resnet18_classifier": CONSTRUCTOR,
                       "robust_ssl.evaluation.external:resnet18_classifier": CONSTRUCTOR}


class ModelError(RobustSSLError):
    """A model file, constructor or shape that evaluate-model cannot use."""


class PixelClassifier(nn.Module):
    """`model` behind the resizing to `input_size` and the normalisation `(x - mean) / std` it
    expects, so that it takes [0, 1] pixels as every attack of the suite assumes."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...] | None = None,
                 std: tuple[float, ...] | None = None, input_size: int | None = None,
                 description: dict | None = None):
        super().__init__()
        if (mean is None) != (std is None):
            raise ModelError("give the normalisation as both --mean and --std, or neither")
        if std is not None and min(std) <= 0:
            raise ModelError(f"--std {list(std)} has a value that is not positive")
        self.model, self.input_size = model, input_size
        self.normalized = mean is not None
        if self.normalized:
            self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.num_classes: int | None = None
        self.description = dict(description or {}, mean=mean, std=std, input_size=input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=False)
        if self.normalized:
            x = (x - self.mean) / self.std
        return self.model(x)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def torchscript_model(path: Path) -> nn.Module:
    """A TorchScript file: trusted code (it runs what its author compiled into it)."""
    existing(path)
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as error:
        raise ModelError(f"'{path}' is not a TorchScript file ({first_line(error)}): give a file "
                         "written by torch.jit.save (robust-ssl export), or a state_dict with "
                         "--state-dict and --constructor") from None


def read_state_dict(path: Path) -> dict:
    """Tensors by name from a `weights_only` load; a {'state_dict': ...} wrapper (a Lightning
    checkpoint, robust-ssl export) is opened, a DataParallel 'module.' prefix dropped."""
    existing(path)
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ModelError(f"cannot read weights from '{path}' ({first_line(error)}): give a file "
                         "written by torch.save(model.state_dict(), path)") from None
    state = entry.get("state_dict", entry) if isinstance(entry, dict) else None
    if not isinstance(state, dict) or not state or not all(
            isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"'{path}' holds no state_dict (tensors by parameter name)")
    if all(name.startswith("module.") for name in state):
        state = {name.removeprefix("module."): value for name, value in state.items()}
    return state


def load_weights(model: nn.Module, state: dict, path: Path) -> nn.Module:
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        details = " ".join(str(error).split())[:400]
        raise ModelError(f"the weights in '{path}' do not fit the model ({details}): check the "
                         "constructor and its arguments") from None
    return model


def constructed_model(path: Path, constructor: str, arguments: dict | None) -> nn.Module:
    """`package.module:function(**arguments)` with the weights of `path`."""
    module_name, _, function_name = constructor.partition(":")
    if not module_name or not function_name:
        raise ModelError(f"--constructor {constructor!r}: expected package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelError(f"cannot import '{module_name}' for --constructor ({first_line(error)}):"
                         " install the package that defines the model, or fix the name") from None
    build = getattr(module, function_name, None)
    if not callable(build):
        raise ModelError(f"'{module_name}' has no function '{function_name}' (--constructor)")
    try:
        model = build(**(arguments or {}))
    except Exception as error:
        raise ModelError(f"{constructor}(**{arguments or {}}) failed ({first_line(error)}): "
                         "check --constructor-args") from None
    return load_weights(model, read_state_dict(path), path)


def torchvision_model(name: str, weights: Path, num_classes: int | None) -> nn.Module:
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise ModelError(f"unknown torchvision classification model {name!r}: choose one of "
                         f"torchvision.models.list_models(), e.g. resnet18, wide_resnet50_2")
    state = read_state_dict(weights)
    if num_classes is None:  # the output layer's rows: the last matrix of the state_dict
        matrices = [t for t in state.values() if t.ndim == 2]
        if not matrices:
            raise ModelError(f"'{weights}' has no output layer to read the number of classes "
                             "from: give --num-classes")
        num_classes = matrices[-1].shape[0]
    model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    return load_weights(model, state, weights)


def existing(path: Path) -> None:
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist")


def check_model(model: PixelClassifier, image_size: int, data_classes: int,
                num_classes: int | None, dataset: str) -> None:
    """One forward pass on two images of the data's size: the model takes them and predicts
    the data's number of classes, or one error says which it does not."""
    if num_classes is not None:
        check_classes("--num-classes gives", num_classes, data_classes, dataset,
                      "evaluate the model on the data it predicts")
    size = model.input_size or image_size
    try:
        with torch.no_grad():
            logits = model.eval()(torch.rand(2, 3, image_size, image_size))
    except Exception as error:
        raise ModelError(f"the model cannot take 3×{size}×{size} inputs ({first_line(error)}): "
                         "set --input-size to the size it expects") from None
    if logits.ndim != 2 or logits.shape[0] != 2:
        raise ModelError(f"the model returns shape {tuple(logits.shape)} for 2 images, not "
                         "(2, classes): give a classifier that returns logits")
    check_classes("the model predicts", logits.shape[1], data_classes, dataset,
                  "evaluate it on the data it was trained for (or build it with that many "
                  "outputs)")
    model.num_classes = data_classes


def evaluate_model(model: nn.Module, output: str | Path, data_dir: str, dataset: str = "cifar10",
                   mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                   input_size: int | None = None, num_classes: int | None = None,
                   device: str = "auto", batch_size: int = 500, test_fraction: float = 1.0,
                   test_limit: int | None = None, name: str | None = None,
                   description: dict | None = None, robustbench: str | Path | None = None,
                   **evaluator_options) -> dict:
    """Evaluate `model` with the suite's protocol; returns (and writes to `output`) the same
    result as a table cell's. `evaluator_options` are AdversarialEvaluator's (eps, attacks,
    sweep_epsilons, sweep_examples, pgd_steps, autoattack_examples, attack_seed, ...)."""
    data = LabeledDataModule(dataset=dataset, data_dir=data_dir, test_fraction=test_fraction,
                             test_limit=test_limit, eval_batch_size=batch_size, augment=False)
    data.setup("test")
    name = name or Path(output).stem
    wrapped = PixelClassifier(model, mean, std, input_size, description)
    check_model(wrapped, data.test.images.shape[-1], data.num_classes, num_classes, dataset)
    evaluator = AdversarialEvaluator.of_model(wrapped, str(output), run_name=name,
                                              **evaluator_options)
    trainer = pl.Trainer(accelerator=device, devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.test(evaluator, data, verbose=False)
    evaluator.example_panel(panel_path(output))
    result = read_result(output).data
    if robustbench is not None:
        record = robustbench_record(result, name, dataset, (description or {}).get("architecture"))
        Path(robustbench).write_text(json.dumps(record, indent=2) + "\n")
    return result


def robustbench_record(result: dict, name: str, dataset: str, architecture: str | None) -> dict:
    """The fields of a RobustBench model_info file that this evaluation fills in (accuracies
    as percentage strings, as RobustBench writes them); the others are left null."""
    metrics, eps = result["metrics"], result["eps"]
    auto = metrics.get(budget_key("autoattack", eps))
    pgd_steps = result["config"]["evaluator"]["pgd_steps"]
    examples = result["examples"]
    return {
        "name": name, "link": None, "authors": None, "venue": None,
        "architecture": architecture, "additional_data": None, "number_forward_passes": 1,
        "dataset": dataset, "threat_model": "Linf", "eps": eps,
        "clean_acc": f"{100 * metrics['clean']:.2f}",
        "reported": None,
        "autoattack_acc": None if auto is None else f"{100 * auto:.2f}",
        "n_examples": examples.get("autoattack_subset", examples["test"]),
        "footnote": (f"robust-ssl evaluate-model: clean on {examples['test']} test images; "
                     + (f"standard AutoAttack on {examples['autoattack_subset']} of them"
                        if auto is not None else "AutoAttack not run")
                     + f"; PGD-{pgd_steps} "
                     + f"{100 * metrics.get(budget_key('pgd', eps), float('nan')):.2f}%"),
    }


def torchvision_classifier(num_classes: int, stem: str = "cifar",
                           backbone: str = "resnet18") -> nn.Module:
    """The suite's classifier as plain torchvision: resnet18 or resnet50 with the stem's first
    layers and the head BatchNorm1d(features, affine=False) + Linear; it takes normalised
    images (CIFAR-10's mean and std, which `robust-ssl export` records). The constructor of a
    state_dict export."""
    import torchvision.models

    if backbone not in TORCHVISION_BACKBONES:
        raise ModelError(f"backbone {backbone!r} has no torchvision definition: choose "
                         f"{' or '.join(TORCHVISION_BACKBONES)}")
    model = getattr(torchvision.models, backbone)(weights=None)
    if stem != "imagenet":
        model.conv1 = nn.Conv2d(3, 64, 3, stride=1 if stem == "cifar" else 2, padding=1,
                                bias=False)
        model.maxpool = nn.Identity()
    features = model.fc.in_features
    model.fc = nn.Sequential(nn.BatchNorm1d(features, affine=False),
                             nn.Linear(features, num_classes))
    return model


def export_classifier(checkpoint: str | Path, output: str | Path,
                      format: str = "torchscript") -> Path:
    """A FineTuner checkpoint as a model that needs only torch (TorchScript, [0, 1] pixels in)
    or torch + torchvision (a state_dict for `torchvision_classifier`, normalised images in;
    ResNets only)."""
    if format not in FORMATS:
        raise ModelError(f"unknown export format {format!r}: choose {' or '.join(FORMATS)}")
    tuner = load_classifier(str(checkpoint)).eval()
    if format == "torchscript":
        plain = nn.Sequential(tuner.encoder, tuner.feature_norm, tuner.classifier).eval()
        with torch.no_grad():  # a ResNet has one path whatever the input: tracing records it
            traced = torch.jit.trace(plain, torch.rand(2, 3, 32, 32))
        return replace_atomically(output, lambda partial: torch.jit.save(traced, str(partial)))
    stem, classes = tuner.hparams.stem, tuner.hparams.num_classes
    backbone = tuner.encoder.backbone
    if backbone not in TORCHVISION_BACKBONES:
        raise ModelError(f"'{checkpoint}' is a {backbone}, which torchvision does not define: "
                         "export it with --format torchscript (it needs only torch)")
    state = {name.removeprefix("encoder.net."): value
             for name, value in tuner.state_dict().items() if name.startswith("encoder.net.")}
    state |= {f"fc.0.{k}": v for k, v in tuner.feature_norm.state_dict().items()}
    state |= {f"fc.1.{k}": v for k, v in tuner.classifier.state_dict().items()}
    normalize = tuner.encoder.normalize
    return save_atomically({"format": STATE_DICT_FORMAT, "state_dict": state,
                            "constructor": CONSTRUCTOR,
                            "constructor_args": {"num_classes": classes, "stem": stem,
                                                 "backbone": backbone},
                            "mean": normalize.mean.flatten().tolist(),
                            "std": normalize.std.flatten().tolist(),
                            "recipe": torchvision_classifier.__doc__}, output)


def epsilon(text: str) -> float:
    """'8/255' or '0.0314'."""
    number, _, denominator = text.partition("/")
    try:
        return float(number) / (float(denominator) if denominator else 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a budget: write 8/255 or 0.0314")


def count_or_all(text: str) -> int | None:
    """'all' (every test image) or a count."""
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of images or all") from None


def exported_settings(path: Path) -> dict:
    """What a `robust-ssl export --format state_dict` file says about building and feeding its
    model (constructor, its arguments, mean, std); {} for any other file."""
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return {}  # read_state_dict names the problem
    if not isinstance(entry, dict) or entry.get("format") != STATE_DICT_FORMAT:
        return {}
    settings = {key: entry[key] for key in ("constructor", "constructor_args", "mean", "std")}
    settings["constructor"] = LEGACY_CONSTRUCTORS.get(settings["constructor"],
                                                      settings["constructor"])
    return settings


def load_from_args(args: argparse.Namespace) -> tuple[nn.Module, dict]:
    """The model the options name, and what describes it in the result. A state_dict that
    robust-ssl exported supplies its own constructor and normalisation unless given."""
    sources = [bool(args.torchscript), bool(args.state_dict), bool(args.torchvision)]
    if sum(sources) != 1:
        raise ModelError("name the model one way: --torchscript FILE, --state-dict FILE "
                         "--constructor package.module:function, or --torchvision NAME "
                         "--weights FILE")
    if args.torchscript:
        return torchscript_model(Path(args.torchscript)), {"torchscript": args.torchscript}
    if args.torchvision:
        if not args.weights:
            raise ModelError(f"--torchvision {args.torchvision} needs --weights FILE: random "
                             "weights are not a model to evaluate")
        return (torchvision_model(args.torchvision, Path(args.weights), args.num_classes),
                {"architecture": args.torchvision, "weights": args.weights})
    exported = exported_settings(Path(args.state_dict))
    if exported and not args.constructor:
        args.constructor, arguments = exported["constructor"], exported["constructor_args"]
        if args.mean is None and args.std is None:
            args.mean, args.std = exported["mean"], exported["std"]
    elif not args.constructor:
        raise ModelError("--state-dict needs --constructor package.module:function (e.g. "
                         "robust_ssl.evaluation.external:torchvision_classifier for a robust-ssl export)")
    else:
        arguments = yaml.safe_load(args.constructor_args) if args.constructor_args else {}
    if not isinstance(arguments, dict):
        raise ModelError(f"--constructor-args {args.constructor_args!r}: expected a YAML "
                         "mapping, e.g. '{num_classes: 10}'")
    model = constructed_model(Path(args.state_dict), args.constructor, arguments)
    return model, {"architecture": args.constructor, "constructor_args": arguments,
                   "state_dict": args.state_dict}


def evaluator_defaults() -> dict:
    """The AdversarialEvaluator's defaults, which the command line offers as its own."""
    parameters = inspect.signature(AdversarialEvaluator.__init__).parameters
    return {name: p.default for name, p in parameters.items()
            if p.default is not inspect.Parameter.empty}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robust-ssl", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate-model", help="evaluate a classifier that is not a robust-ssl "
                       "run with the suite's protocol (ε in [0, 1] pixels unless --eps-space)")
    model = e.add_argument_group("the model (one of)")
    model.add_argument("--torchscript", metavar="FILE", help="a torch.jit.save file. It is "
                       "code: load only files you trust")
    model.add_argument("--state-dict", metavar="FILE", help="weights (loaded weights_only), "
                       "with --constructor")
    model.add_argument("--constructor", metavar="PKG.MODULE:FUNCTION")
    model.add_argument("--constructor-args", metavar="YAML", help="e.g. '{num_classes: 10}'")
    model.add_argument("--torchvision", metavar="NAME", help="a torchvision classification "
                       "model, e.g. resnet18, with --weights")
    model.add_argument("--weights", metavar="FILE", help="its state_dict (weights_only)")
    e.add_argument("--mean", type=float, nargs=3, help="the normalisation the model expects, "
                   "applied inside (default: none, the model takes [0, 1] pixels)")
    e.add_argument("--std", type=float, nargs=3)
    e.add_argument("--input-size", type=int, help="the image size the model expects; the "
                   "data's images are resized inside, attacks stay at the data's size")
    e.add_argument("--num-classes", type=int, help="checked against the data")
    e.add_argument("--data-dir", default="data")
    e.add_argument("--dataset", default="cifar10")
    e.add_argument("--device", default="auto", help="auto, cpu or gpu")
    e.add_argument("--batch-size", type=int, default=500)
    e.add_argument("--test-fraction", type=float, default=1.0, help="a stratified share of "
                   "the test split, as a profile's test_fraction")
    e.add_argument("--test-limit", type=int, help="about this many test images, stratified, "
                   "as a profile's test_limit (the smoke profile's 200)")
    default = evaluator_defaults()
    e.add_argument("--attacks", nargs="*", default=list(default["attacks"]), choices=ATTACKS)
    e.add_argument("--eps", type=epsilon, default=default["eps"], help="e.g. 8/255")
    e.add_argument("--sweep-epsilons", type=epsilon, nargs="*",
                   default=list(default["sweep_epsilons"]))
    e.add_argument("--sweep-examples", type=int, default=default["sweep_examples"])
    e.add_argument("--eps-space", choices=EPS_SPACES, default=default["eps_space"],
                   help="pixel: ε bounds each [0, 1] pixel; normalized: ε bounds the "
                   "normalised input (per channel ε·std_c, CIFAR-10's std)")
    e.add_argument("--normalized-attacks", nargs="*", choices=("fgsm", "pgd"),
                   default=list(default["normalized_attacks"]),
                   help="also run these at --eps in the normalised convention")
    e.add_argument("--normalized-pgd-on", choices=PGD_IMAGES,
                   default=default["normalized_pgd_on"],
                   help="survivors: that PGD attacks only the images clean and the normalised "
                   "FGSM left right (its number is their worst case); all: every image")
    e.add_argument("--pgd-steps", type=int, default=default["pgd_steps"])
    e.add_argument("--autoattack-examples", type=count_or_all,
                   default=default["autoattack_examples"], help="a number of test images, or "
                   "all")
    e.add_argument("--corruptions", nargs="*", default=[default["corruptions"]],
                   metavar="NAME", help="all, none (the default) or names of CIFAR-10-C's 15 "
                   "corruptions: clean accuracy under each at severities 1-5")
    e.add_argument("--corruption-source", choices=("auto", "published", "generated"),
                   default=default["corruption_source"], help="published: DATA_DIR/CIFAR-10-C; "
                   "generated: the test images corrupted here (never mixed); auto: published "
                   "where the files are")
    e.add_argument("--seed", type=int, default=0, help="the attacks' random starts")
    e.add_argument("--name", help="the run's name (default: the output's stem)")
    e.add_argument("--output", required=True, help="the result JSON")
    e.add_argument("--robustbench", metavar="JSON", help="also write a RobustBench-style record")
    x = sub.add_parser("export", help="write a finished run's classifier as a model that needs "
                       "only torch (torchscript) or torch + torchvision (state_dict)")
    x.add_argument("checkpoint", help="a run's classifier.ckpt")
    x.add_argument("output")
    x.add_argument("--format", choices=FORMATS, default="torchscript")
    return p


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    with exit_on_user_error():
        if args.command == "export":
            path = export_classifier(args.checkpoint, args.output, args.format)
            print(f"exported {args.checkpoint} to {path} ({args.format})")
            return
        model, description = load_from_args(args)
        result = evaluate_model(
            model, args.output, args.data_dir, dataset=args.dataset, mean=args.mean,
            std=args.std, input_size=args.input_size, num_classes=args.num_classes,
            device=args.device, batch_size=args.batch_size, test_fraction=args.test_fraction,
            test_limit=args.test_limit, name=args.name, description=description,
            robustbench=args.robustbench, eps=args.eps, attacks=tuple(args.attacks),
            sweep_epsilons=tuple(args.sweep_epsilons), sweep_examples=args.sweep_examples,
            pgd_steps=args.pgd_steps, autoattack_examples=args.autoattack_examples,
            eps_space=args.eps_space, normalized_attacks=tuple(args.normalized_attacks),
            normalized_pgd_on=args.normalized_pgd_on,
            corruptions=args.corruptions[0] if args.corruptions in (["all"], ["none"])
            else args.corruptions, corruption_source=args.corruption_source,
            attack_seed=args.seed)
    shown = ", ".join(f"{k} {100 * v:.1f}%" for k, v in result["metrics"].items())
    print(f"{result['run']}: {shown}")
