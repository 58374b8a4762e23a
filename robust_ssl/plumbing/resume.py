"""What makes an interrupted run resume exactly: whole checkpoint files and restored random state.

Lightning checkpoints hold the weights, the optimiser and the loop counters, but not the global
random generators that draw augmentations and attack starts; and a process killed while a
checkpoint is written can leave half a file. `RandomState` and `AtomicCheckpointIO` close both
gaps; the `robust-ssl` CLI installs them in every run.
"""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from robust_ssl.plumbing.files import save_atomically


def collect_random_state() -> dict:
    """Every global generator the training draws from, as plain lists and tensors (a
    `weights_only` load can read them back)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
             "python": [version, list(internal), python_gauss]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, internal, python_gauss = state["python"]
    random.setstate((version, tuple(internal), python_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomState(pl.Callback):
    """Stores the random generators in every checkpoint and restores them when the first epoch
    after a resume starts.

    Checkpoints are written at the end of an epoch, and nothing draws random numbers between
    that moment and the next epoch's first batch (the data order comes from (seed, epoch)), so
    a resumed run draws exactly what the uninterrupted run drew.
    """

    def __init__(self):
        self._pending: dict | None = None

    def state_dict(self) -> dict:
        return collect_random_state()

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending = state_dict

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is not None:
            restore_random_state(self._pending)
            self._pending = None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to `<name>.partial` and renames it into place, so a killed run leaves
    either the previous checkpoint or the new one, never half a file."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        save_atomically(checkpoint, path)
