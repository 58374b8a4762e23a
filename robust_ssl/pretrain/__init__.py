"""Pretext tasks (one LightningModule each) and the callbacks they share."""

from robust_ssl.pretrain.callbacks import ExportEncoder, KNNMonitor
from robust_ssl.pretrain.simclr import SimCLR

__all__ = ["ExportEncoder", "KNNMonitor", "SimCLR"]
