"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.5,
            gather_distributed: bool = False) -> torch.Tensor:
    """Mean over all 2N anchors of l_{i,j} = -log softmax_k(sim(z_i, z_k) / τ)[j], k ≠ i.

    `z_a[i]` and `z_b[i]` are the projections of the two views of image i. Similarities are
    computed in fp32 even under autocast: bf16 cosines divided by a small τ lose the digits that
    tell a positive from its negatives. With `gather_distributed`, the projections of every
    rank are gathered with gradients flowing back, so each anchor is contrasted with the global
    batch and a W-process run equals one process on the concatenated batch (DDP's gradient
    averaging turns the per-rank means into the global mean).
    """
    if z_a.shape != z_b.shape or z_a.dim() != 2:
        raise ValueError(f"expected two N×D tensors of one shape, got {tuple(z_a.shape)} and "
                         f"{tuple(z_b.shape)}")
    with torch.autocast(device_type=z_a.device.type, enabled=False):
        z_a = F.normalize(z_a.float(), dim=1)
        z_b = F.normalize(z_b.float(), dim=1)
        all_a, all_b, offset = _gather(z_a, z_b) if gather_distributed else (z_a, z_b, 0)
        n, total = len(z_a), len(all_a)
        anchors = torch.cat([z_a, z_b])                     # 2n local anchors
        candidates = torch.cat([all_a, all_b])              # 2·total candidates
        logits = anchors @ candidates.T / temperature
        index = torch.arange(n, device=z_a.device) + offset
        itself = torch.cat([index, index + total])
        positive = torch.cat([index + total, index])
        is_self = torch.zeros_like(logits, dtype=torch.bool)
        is_self[torch.arange(2 * n, device=z_a.device), itself] = True
        return F.cross_entropy(logits.masked_fill(is_self, float("-inf")), positive)


def _gather(z_a: torch.Tensor, z_b: torch.Tensor):
    """All ranks' projections (autograd-aware all_gather) and this rank's offset in them."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z_a, z_b, 0
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(z_a)), torch.cat(all_gather(z_b)), dist.get_rank() * len(z_a)
