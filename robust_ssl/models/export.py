"""Save a pretrained encoder's weights alone, and load them back only into the same architecture."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from robust_ssl.errors import RobustSSLError
from robust_ssl.models.batchnorm import single_batchnorm
from robust_ssl.plumbing.files import save_atomically

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


def load_encoder(encoder: torch.nn.Module, path: str | os.PathLike) -> dict:
    """Load the weights at `path` into `encoder`; returns the file's metadata.

    Stops with a CheckpointError when the file is missing, is not an encoder export, or was
    saved from another architecture (e.g. another stem), before touching `encoder`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"encoder file '{path}' does not exist: run the pretraining that "
                              "writes it, or fix the path")
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read encoder file '{path}' ({error}): it is damaged or "
                              "not a robust-ssl encoder export") from error
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a robust-ssl encoder export (a Lightning "
                              "checkpoint? export the encoder with the ExportEncoder callback)")
    if entry["architecture"] != encoder.architecture:
        raise CheckpointError(
            f"encoder file '{path}' holds {entry['architecture']} but the model is "
            f"{encoder.architecture}: use the same backbone settings as the pretraining"
        )
    encoder.load_state_dict(entry["state_dict"])
    return entry["metadata"]
