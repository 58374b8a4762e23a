"""Pretext tasks, the pretrainer that combines them, and the callbacks they share."""

from robust_ssl.pretrain.adversarial_simclr import AdversarialSimCLRTask
from robust_ssl.pretrain.barlow_twins import BarlowTwinsTask
from robust_ssl.pretrain.byol import BYOLTask
from robust_ssl.pretrain.callbacks import ExportEncoder, KNNMonitor
from robust_ssl.pretrain.jigsaw import JigsawTask
from robust_ssl.pretrain.moco import MoCoTask
from robust_ssl.pretrain.pretrainer import Pretrainer
from robust_ssl.pretrain.rotation import RotationTask
from robust_ssl.pretrain.simclr import SimCLRTask

__all__ = ["AdversarialSimCLRTask", "BYOLTask", "BarlowTwinsTask", "ExportEncoder", "JigsawTask",
           "KNNMonitor", "MoCoTask", "Pretrainer", "RotationTask", "SimCLRTask"]
