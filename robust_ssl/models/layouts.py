"""Encoder files of other codebases, read into the suite's one backbone.

Each layout is the way a codebase of the robust-SSL literature saves a ResNet encoder, mapped
onto torchvision's key names (what `Encoder.net` is), read from the repositories:
- `acl`: ACL (VITA-Group/Adversarial-Contrastive-Learning), DynACL and DynACL++
  (PKU-ML/DYNACL), AIR and RCS (which build on them), AdvCL (LijieFan/AdvCL) and A-InfoNCE: a
  torchvision-shaped ResNet whose every BatchNorm is a `batch_norm_multiple` holding one
  BatchNorm per branch (`bn1.bn_list.0.weight`: 0 = clean ("normal"), 1 = adversarial ("pgd"),
  AdvCL adds 2 = "pgd_ce"), shortcuts `downsample.conv` / `downsample.bn`, a projection head
  under `fc.`; saved as {'state_dict': ...} (ACL, DynACL; DynACL++'s AFF file as
  'state_dict_dual') or {'model': ...} (AdvCL). The RobustSSL benchmark fine-tunes the
  adversarial branch (its `cvt_state_dict` with bnNameCnt 1), as `branch="adversarial"` does.
- `solo-learn`: DeACL (pantheon5100/DeACL, built on solo-learn): a Lightning checkpoint whose
  'state_dict' holds the student as `backbone.` + torchvision keys, beside its projector,
  classifier and teacher (`momentum_backbone.`).
- `torchvision`: a plain torchvision ResNet-18 / ResNet-50 state_dict (`fc.` dropped).
Any of them may sit under a `module.` (DataParallel) or other prefix: the encoder is found by
its stem and first block's convolutions wherever they are; several candidates (a student and a
teacher, DynACL's encoder_q and encoder_k) are told apart only where one is a momentum copy,
else the reader asks for `prefix`.

Normalisation: the codebases normalise inside their model with buffers saved in the file
(`normalize.mean/std`: ImageNet's statistics in ACL's and DynACL's code, CIFAR-10's in
DeACL's); AdvCL's model takes raw [0, 1] pixels. `normalize="file"` (the default) takes the
file's buffers, or none where it has none, which is what the benchmark's loading amounts to;
`cifar10`, `imagenet` or `none` override it.

Deliberately not read: the stride and padding of a 3×3 stem conv are not in the weights. The
field's CIFAR ResNets use stride 1 (our `cifar` stem); solo-learn pads that conv by 2, not 1,
so its feature maps are 34×34: loaded here, as in the benchmark, into the padding-1 stem.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torchvision.models import resnet18, resnet50

from robust_ssl.errors import RobustSSLError

LAYOUTS = ("robust-ssl", "acl", "solo-learn", "torchvision")
BRANCHES = ("adversarial", "clean")
NORMALIZATIONS = {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
                  "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
                  "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))}
# where codebases keep the tensors of a saved model, in the order the benchmark looks
WRAPPERS = ("state_dict_dual", "state_dict", "model")
MOMENTUM_WORDS = ("momentum", "teacher", "target", "ema")
BRANCH_INDEX = {"clean": 0, "adversarial": 1}  # ACL's bn_names = ['normal', 'pgd', ...]
STEM, FIRST_BLOCK = "conv1.weight", "layer1.0.conv1.weight"


class LayoutError(RobustSSLError):
    """An encoder file that no layout reads, or of another architecture than asked."""


@dataclass
class Foreign:
    """An encoder file read into torchvision's key names: its weights, the architecture they
    imply, the normalisation its model applied, and how it was read."""

    state: dict[str, torch.Tensor]
    backbone: str
    stem: str
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    layout: str
    notes: dict = field(default_factory=dict)


def read_tensors(path: Path) -> dict:
    """The file's tensors by name (`weights_only`: a file that needs code to unpickle is
    refused, not run)."""
    if not path.is_file():
        raise LayoutError(f"encoder file '{path}' does not exist: fix the path")
    try:
        # argparse.Namespace: the hyperparameters of Lightning checkpoints (solo-learn's)
        with torch.serialization.safe_globals([argparse.Namespace]):
            entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        text = str(error).strip().splitlines()
        raise LayoutError(f"cannot read encoder file '{path}' ({type(error).__name__}: "
                          f"{text[0] if text else 'empty or damaged'}): it is damaged, or "
                          "needs code to load; save its state_dict with torch.save("
                          "model.state_dict(), path) and give that file") from None
    return entry


def tensors_of(entry) -> tuple[dict[str, torch.Tensor], str | None]:
    """(name -> tensor, the wrapper key it came from) of a loaded file."""
    if isinstance(entry, dict):
        for wrapper in WRAPPERS:
            inner = entry.get(wrapper)
            if isinstance(inner, dict) and any(isinstance(v, torch.Tensor) for v in inner.values()):
                return {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)}, wrapper
        return {k: v for k, v in entry.items() if isinstance(v, torch.Tensor)}, None
    return {}, None


def encoder_prefix(state: dict[str, torch.Tensor], prefix: str | None, path: Path) -> str:
    """The prefix under which the file holds its ResNet encoder."""
    found = sorted(key[:-len(STEM)] for key in state
                   if key.endswith(STEM) and key[:-len(STEM)] + FIRST_BLOCK in state)
    if prefix is not None:
        if prefix not in found:
            raise LayoutError(f"'{path}' has no encoder under prefix {prefix!r}; it has "
                              f"{', '.join(repr(p) for p in found) or 'none'}")
        return prefix
    if len(found) > 1:
        students = [p for p in found
                    if not any(word in p.lower() for word in MOMENTUM_WORDS)]
        if len(students) == 1:
            return students[0]
        raise LayoutError(f"'{path}' holds {len(found)} encoders, under "
                          f"{', '.join(repr(p) for p in found)}: choose one with prefix=...")
    return found[0] if found else ""


def stored_normalization(state: dict[str, torch.Tensor], prefix: str
                         ) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The (mean, std) buffers of the model the encoder sits in: under its prefix or a
    shorter one (this suite keeps them beside `net.`, in `encoder.normalize`)."""
    parts = prefix.split(".")[:-1]
    for cut in range(len(parts), -1, -1):
        base = "".join(f"{part}." for part in parts[:cut])
        mean, std = state.get(f"{base}normalize.mean"), state.get(f"{base}normalize.std")
        if mean is not None and std is not None and mean.numel() == std.numel() == 3:
            return (tuple(float(v) for v in mean.flatten()),
                    tuple(float(v) for v in std.flatten()))
    return None


def branch_of(key: str) -> tuple[str, int | None]:
    """'layer1.0.bn1.bn_list.1.weight' -> ('layer1.0.bn1.weight', 1); ACL's single-branch
    'bn1.bn_list.weight' -> ('bn1.weight', None); other keys unchanged."""
    match = re.match(r"^(.*)\.bn_list(?:\.(\d+))?\.([^.]+)$", key)
    if not match:
        return key, None
    index = match.group(2)
    return f"{match.group(1)}.{match.group(3)}", None if index is None else int(index)


def from_acl(state: dict[str, torch.Tensor], branch: str) -> tuple[dict, dict]:
    """ACL's multi-branch BatchNorm keys as torchvision's, keeping one branch."""
    indices = {branch_of(key)[1] for key in state} - {None}
    wanted = BRANCH_INDEX[branch]
    chosen = wanted if wanted in indices else (min(indices) if indices else None)
    out = {}
    for key, value in state.items():
        plain, index = branch_of(key)
        if index is not None and index != chosen:
            continue
        plain = plain.replace("downsample.conv.", "downsample.0.")
        plain = plain.replace("downsample.bn.", "downsample.1.")
        out[plain] = value
    names = {0: "clean ('normal')", 1: "adversarial ('pgd')", 2: "'pgd_ce'"}
    kept = "the only one" if len(indices) <= 1 else names.get(chosen, str(chosen))
    return out, {"branches": len(indices) or 1, "branch": kept}


def architecture(state: dict[str, torch.Tensor], path: Path) -> tuple[str, str]:
    """(backbone, stem) the weights imply."""
    conv1 = state.get(STEM)
    if conv1 is None or conv1.ndim != 4:
        raise LayoutError(f"'{path}' has no stem convolution ({STEM})")
    stem = {3: "cifar", 7: "imagenet"}.get(conv1.shape[-1])
    if stem is None:
        raise LayoutError(f"'{path}': a {conv1.shape[-1]}×{conv1.shape[-1]} stem convolution, "
                          "neither the CIFAR stem (3×3) nor torchvision's (7×7)")
    if "layer1.0.conv3.weight" in state:
        backbone = "resnet50"
    elif "layer1.2.conv1.weight" in state:
        raise LayoutError(f"'{path}' holds a ResNet-34 or deeper basic-block ResNet; the suite's "
                          "backbones are resnet18, resnet50, wrn28_10, wrn34_10")
    else:
        backbone = "resnet18"
    return backbone, stem


def reference_keys(backbone: str, stem: str) -> dict[str, torch.Size]:
    """torchvision's encoder keys and shapes for `backbone` with `stem` (no fc)."""
    net = (resnet18 if backbone == "resnet18" else resnet50)(weights=None)
    if stem != "imagenet":
        net.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    return {k: v.shape for k, v in net.state_dict().items() if not k.startswith("fc.")}


def read_foreign(path: str | Path, branch: str = "adversarial", normalize: str = "file",
                 prefix: str | None = None) -> Foreign:
    """Read an encoder file of another codebase (see the module's list of layouts)."""
    path = Path(path)
    return foreign_from(read_tensors(path), path, branch, normalize, prefix)


def check_options(branch: str, normalize: str) -> None:
    if branch not in BRANCHES:
        raise LayoutError(f"branch={branch!r}: choose adversarial or clean")
    if normalize not in ("file", *NORMALIZATIONS):
        raise LayoutError(f"normalize={normalize!r}: choose file, {', '.join(NORMALIZATIONS)}")


def foreign_from(entry, path: Path, branch: str = "adversarial", normalize: str = "file",
                 prefix: str | None = None) -> Foreign:
    """A loaded file (`read_tensors`) in the first layout that reads it."""
    check_options(branch, normalize)
    state, wrapper = tensors_of(entry)
    chosen = encoder_prefix(state, prefix, path) if state else ""
    if not state or chosen + STEM not in state:
        first = ", ".join(list(state)[:6]) or (
            f"no tensors; top-level keys {', '.join(map(str, list(entry)[:6]))}"
            if isinstance(entry, dict) else f"a {type(entry).__name__}, no tensors")
        raise LayoutError(
            f"'{path}' is in no layout this suite reads (tried: {', '.join(LAYOUTS)}, each "
            f"found by its stem '{STEM}' and first block '{FIRST_BLOCK}', under any prefix, "
            f"in the file or its {' / '.join(WRAPPERS)}); its first keys: {first}")
    inner = {k[len(chosen):]: v for k, v in state.items()
             if k.startswith(chosen) and not k[len(chosen):].startswith(("fc.", "normalize."))}
    stored = stored_normalization(state, chosen)
    notes = {"prefix": chosen, "wrapper": wrapper}
    if any(".bn_list" in key for key in inner):
        layout = "acl"
        inner, more = from_acl(inner, branch)
        notes |= more
    else:
        layout = "solo-learn" if chosen.endswith("backbone.") else "torchvision"
    backbone, stem = architecture(inner, path)
    expected = reference_keys(backbone, stem)
    missing = sorted(set(expected) - set(inner))
    unexpected = sorted(set(inner) - set(expected))
    if missing or unexpected:
        raise LayoutError(
            f"'{path}' read as the {layout} layout does not hold a torchvision {backbone}: "
            f"missing {', '.join(missing[:4]) or 'nothing'}"
            f"{' ...' if len(missing) > 4 else ''}; unexpected "
            f"{', '.join(unexpected[:4]) or 'nothing'}{' ...' if len(unexpected) > 4 else ''}")
    wrong = [f"{k} {tuple(inner[k].shape)} (a {backbone} has {tuple(shape)})"
             for k, shape in expected.items() if inner[k].shape != shape]
    if wrong:
        raise LayoutError(f"'{path}': weights of another width: {'; '.join(wrong[:3])}")
    if normalize == "file":
        if stored is not None:
            normalization = stored
            notes["normalization"] = "the file's normalize.mean / normalize.std"
        else:
            normalization = NORMALIZATIONS["none"]
            notes["normalization"] = "none (the file has no normalisation buffers)"
    else:
        normalization = NORMALIZATIONS[normalize]
        notes["normalization"] = normalize
    return Foreign(inner, backbone, stem, normalization, layout, notes)
