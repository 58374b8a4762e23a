"""MoCo v2 (Chen et al. 2020, "Improved baselines") as a pretext task: queries from the shared
encoder are contrasted with a momentum key encoder's key of the other view and with a queue of
earlier keys as negatives, so the negatives outnumber the batch.

Key encoder: a MomentumCopy of the encoder and projector (`bind`), moved with a constant
momentum after every optimiser step. The queue is a buffer, so it is saved and restored with
the checkpoint; under DDP every rank enqueues the keys of all ranks, so the queues stay equal.
Settings: a queue of 4096 keys and a 512-512-128 head, as lightly's CIFAR examples, with their
symmetrised loss (both views serve as queries); τ = 0.2 (MoCo v2's); a constant momentum of
0.99 (MoCo's 0.999 is for ImageNet-length runs). No shuffled BatchNorm (MoCo's guard against
BatchNorm statistics telling which key is the positive; lightly's single-device examples train
without it too).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from robust_ssl.data.augment import SimCLRViews
from robust_ssl.errors import RobustSSLError
from robust_ssl.models.heads import ProjectionHead
from robust_ssl.pretrain.losses import info_nce_with_queue
from robust_ssl.pretrain.momentum import MomentumCopy


class KeyQueue(nn.Module):
    """The last `size` keys (L2-normalised), the oldest replaced first; starts as random unit
    vectors, as MoCo's."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1:
            raise RobustSSLError(f"queue_size={size} must be at least 1")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor, gather_distributed: bool = False) -> None:
        if gather_distributed and dist.is_available() and dist.is_initialized() \
                and dist.get_world_size() > 1:
            gathered = [torch.empty_like(keys) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, keys.contiguous())
            keys = torch.cat(gathered)
        size = len(self.keys)
        keys = F.normalize(keys.float(), dim=1)[-size:]
        slots = (self.pointer + torch.arange(len(keys), device=keys.device)) % size
        self.keys[slots] = keys
        self.pointer.copy_((self.pointer + len(keys)) % size)


class MoCoTask(nn.Module):
    name = "moco"

    def __init__(self, projection_hidden_dim: int = 512, projection_dim: int = 128,
                 temperature: float = 0.2, queue_size: int = 4096, momentum: float = 0.99,
                 gather_distributed: bool = True, views: SimCLRViews | None = None):
        super().__init__()
        if not 0 <= momentum <= 1:
            raise RobustSSLError(f"momentum={momentum} is outside [0, 1]")
        self.temperature, self.momentum = temperature, momentum
        self.gather_distributed = gather_distributed
        self.dims = projection_hidden_dim, projection_dim
        self.queue = KeyQueue(queue_size, projection_dim)
        self.views = views or SimCLRViews()
        self.projection = self.key_encoder = None

    def online(self, encoder: nn.Module) -> nn.Module:
        return nn.Sequential(encoder, self.projection)

    def bind(self, encoder: nn.Module) -> None:
        """A head for the encoder's width, then the key encoder as a copy of both."""
        self.projection = ProjectionHead(encoder.feature_dim, *self.dims)
        self.key_encoder = MomentumCopy(self.online(encoder))

    def after_optimizer_step(self, encoder: nn.Module, step: int, total_steps: int) -> None:
        self.key_encoder.update(self.online(encoder), self.momentum)

    def loss(self, encode, images: torch.Tensor) -> torch.Tensor:
        """Enqueues this batch's keys in training mode, after they served as positives."""
        views = torch.cat(self.views(images))
        q_a, q_b = self.projection(encode(views)).chunk(2)
        with torch.no_grad():
            k_a, k_b = self.key_encoder(views).chunk(2)
        queue = self.queue.keys
        loss = (info_nce_with_queue(q_a, k_b, queue, self.temperature)
                + info_nce_with_queue(q_b, k_a, queue, self.temperature)) / 2
        if self.training:
            self.queue.push(torch.cat([k_a, k_b]), self.gather_distributed)
        return loss
