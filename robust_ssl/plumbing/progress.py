"""One line per epoch instead of progress bars when the output is not a terminal.

A progress bar redrawn with carriage returns fills a log file (`make table1 > log`) with
thousands of updates; a line per epoch with its metrics and minutes says the same.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_info


class EpochLines(pl.Callback):
    def __init__(self):
        self._start = time.perf_counter()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {name: value.item() for name, value in trainer.callback_metrics.items()
                   if value.numel() == 1}
        shown = ", ".join(f"{name} {value:.4g}" for name, value in sorted(metrics.items()))
        minutes = (time.perf_counter() - self._start) / 60
        rank_zero_info(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
                       f"{': ' + shown if shown else ''} ({minutes:.1f} min)")
