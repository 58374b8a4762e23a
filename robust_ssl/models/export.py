"""Save a pretrained encoder's weights alone, and load them back only into the same
architecture; read an encoder file of another codebase (layouts.py) the same way, or import it
once into this suite's format with where it came from."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from robust_ssl.errors import RobustSSLError
from robust_ssl.models.batchnorm import single_batchnorm
from robust_ssl.models.layouts import Foreign, LayoutError, foreign_from, read_tensors
from robust_ssl.plumbing.files import save_atomically, sha256

FORMAT = "robust-ssl-encoder"
VERSION = 1


class CheckpointError(RobustSSLError):
    """An encoder file that is missing, not an encoder, or of another architecture."""


def save_encoder(encoder: torch.nn.Module, path: str | os.PathLike, **metadata) -> Path:
    """Write {format, architecture, state_dict, metadata} to `path` atomically; an encoder
    with dual BatchNorm is written as the plain network of its default branch."""
    encoder = single_batchnorm(encoder)
    state = {name: tensor.detach().cpu() for name, tensor in encoder.state_dict().items()}
    entry = dict(format=FORMAT, version=VERSION, architecture=encoder.architecture,
                 state_dict=state, metadata=metadata)
    return save_atomically(entry, path)


def load_encoder(encoder: torch.nn.Module, path: str | os.PathLike, **layout_options) -> dict:
    """Load the weights at `path` into `encoder`; returns the file's metadata.

    A robust-ssl export, or an encoder file in one of the layouts of other codebases
    (layouts.py; `layout_options`: branch, normalize, prefix). Stops with a CheckpointError
    when the file is missing or unreadable, is in no layout, or holds another architecture
    (e.g. another stem), before touching `encoder`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"encoder file '{path}' does not exist: run the pretraining that "
                              "writes it, or fix the path")
    try:
        entry = read_tensors(path)
        if not (isinstance(entry, dict) and entry.get("format") == FORMAT):
            entry = export_entry(foreign_from(entry, path, **layout_options), path)
    except LayoutError as error:
        raise CheckpointError(str(error)) from None
    if entry["architecture"] != encoder.architecture:
        raise CheckpointError(
            f"encoder file '{path}' holds {entry['architecture']} but the model is "
            f"{encoder.architecture}: use the same backbone settings as the pretraining"
            + (" (a 3×3 stem convolution reads as the CIFAR stem, stride 1)"
               if entry["metadata"].get("pretext") == "external" else ""))
    encoder.load_state_dict(entry["state_dict"])
    return entry["metadata"]


def export_entry(foreign: Foreign, source: Path) -> dict:
    """A foreign encoder as this suite's export: the weights under `net.`, its normalisation
    as the Encoder's buffers, where it came from in the metadata."""
    mean, std = (torch.tensor(values).view(1, -1, 1, 1) for values in foreign.normalization)
    state = {"normalize.mean": mean, "normalize.std": std}
    state |= {f"net.{key}": value for key, value in foreign.state.items()}
    features = 2048 if foreign.backbone == "resnet50" else 512
    metadata = {"pretext": "external", "dataset": None, "epochs": None,
                "layout": foreign.layout, "source": source.name,
                "source_sha256": sha256(source), **foreign.notes}
    return dict(format=FORMAT, version=VERSION, state_dict=state, metadata=metadata,
                architecture={"name": foreign.backbone, "stem": foreign.stem,
                              "feature_dim": features})


def import_encoder(source: str | os.PathLike, output: str | os.PathLike, backbone: str,
                   stem: str, **layout_options) -> dict:
    """Read `source` in whatever layout it has, check it is a `backbone` with `stem`, and
    write it to `output` in this suite's format (atomically); returns its metadata."""
    from robust_ssl.models.backbone import Encoder

    encoder = Encoder(backbone, stem)
    metadata = load_encoder(encoder, source, **layout_options)
    if metadata.get("pretext") != "external":
        metadata = dict(metadata, source=Path(source).name, source_sha256=sha256(Path(source)))
    encoder.eval()
    save_encoder(encoder, output, **metadata)
    return metadata
