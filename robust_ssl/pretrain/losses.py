"""The pretext tasks' losses: NT-Xent (SimCLR), BYOL's normalised regression, Barlow Twins'
cross-correlation loss and MoCo's InfoNCE against a queue of negatives.

Each is computed in fp32 even under autocast (bf16 cosines and correlations lose the digits
these losses turn on), and each is tested against lightly's implementation (tests/test_losses.py).
"""

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


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's 2 − 2·cos(p, z'), the squared distance of the L2-normalised vectors, mean over
    the batch. The target carries no gradient (it comes from the momentum network)."""
    with torch.autocast(device_type=prediction.device.type, enabled=False):
        p = F.normalize(prediction.float(), dim=1)
        z = F.normalize(target.detach().float(), dim=1)
        return (2 - 2 * (p * z).sum(dim=1)).mean()


def barlow_twins_loss(z_a: torch.Tensor, z_b: torch.Tensor, lambda_: float = 5e-3,
                      gather_distributed: bool = False) -> torch.Tensor:
    """Σ_i (1 − C_ii)² + λ·Σ_{i≠j} C_ij², C the cross-correlation of the two views'
    projections, each standardised over the batch (Zbontar et al. 2021, algorithm 1).

    With `gather_distributed`, C is averaged over the ranks with gradients flowing back (each
    rank standardising its own batch), so every rank minimises the loss of the global C.
    """
    with torch.autocast(device_type=z_a.device.type, enabled=False):
        a, b = _standardise(z_a.float()), _standardise(z_b.float())
        c = a.T @ b / len(a)
        if gather_distributed and dist.is_available() and dist.is_initialized() \
                and dist.get_world_size() > 1:
            from torch.distributed.nn.functional import all_reduce

            c = all_reduce(c) / dist.get_world_size()
        on_diagonal = torch.diagonal(c)
        off_diagonal = c.pow(2).sum() - on_diagonal.pow(2).sum()
        return (on_diagonal - 1).pow(2).sum() + lambda_ * off_diagonal


def _standardise(z: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit (biased) variance per dimension over the batch, as BatchNorm."""
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + 1e-5)


def info_nce_with_queue(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor,
                        temperature: float = 0.2) -> torch.Tensor:
    """MoCo's InfoNCE: −log e^{q·k⁺/τ} / (e^{q·k⁺/τ} + Σ_n e^{q·n/τ}), mean over the batch, the
    positive the key of the other view and the negatives the queue's rows (earlier keys); the
    vectors are L2-normalised here, the keys carry no gradient."""
    with torch.autocast(device_type=query.device.type, enabled=False):
        q = F.normalize(query.float(), dim=1)
        k = F.normalize(key.detach().float(), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)
        negatives = q @ F.normalize(queue.float(), dim=1).T
        logits = torch.cat([positive, negatives], dim=1) / temperature
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))
