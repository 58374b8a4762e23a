"""Adversarial SimCLR: contrastive pretraining against an adversary (RoCL, Kim et al. 2020;
ACL, Jiang et al. 2020), so that the features, not only a classifier on them, resist attacks.

Features learned without an adversary are not robust, and a linear layer trained on top with
FGSM examples cannot make them so (the quick Table 1: its probes keep 11-14% under FGSM, 3-6%
under PGD-20). Here PGD attacks the contrastive loss itself: it perturbs one view of each image
to push its projection away from its positive view's, and the encoder learns to pull it back.
"""

from __future__ import annotations

import torch

from robust_ssl.attacks import ascend, check_epsilon
from robust_ssl.data.augment import SimCLRViews
from robust_ssl.errors import RobustSSLError
from robust_ssl.pretrain.losses import nt_xent
from robust_ssl.pretrain.simclr import SimCLRTask


class AdversarialSimCLRTask(SimCLRTask):
    """SimCLR's loss on the two views, plus `adv_weight` × NT-Xent between an adversarial
    version of view a and view b.

    The adversary is PGD of `steps` steps of `alpha` from a random start in the L∞ ball of
    `eps` (defaults: ACL's 5 steps of 2/255 at 8/255), raising NT-Xent between view a and the
    (fixed) projections of view b, the rest of the batch as negatives: RoCL's instance-wise
    attack. Its forward passes leave the BatchNorm statistics alone and its gradients touch no
    parameter. A step costs about 1 + (steps + 1)/2 SimCLR steps: each attack step and the
    adversarial loss pass one view, SimCLR's loss passes two.
    """

    name = "adv_simclr"
    adversarial = True

    def __init__(self, eps: float = 8 / 255, alpha: float = 2 / 255, steps: int = 5,
                 adv_weight: float = 1.0, projection_hidden_dim: int = 512,
                 projection_dim: int = 128, temperature: float = 0.5,
                 gather_distributed: bool = True, views: SimCLRViews | None = None):
        check_epsilon(eps)
        check_epsilon(alpha, "alpha")
        if steps < 1:
            raise RobustSSLError(f"steps={steps}: the contrastive attack needs at least one step")
        if adv_weight < 0:
            raise RobustSSLError(f"adv_weight={adv_weight} must be non-negative")
        super().__init__(projection_hidden_dim, projection_dim, temperature, gather_distributed,
                         views)
        self.eps, self.alpha, self.steps, self.adv_weight = eps, alpha, steps, adv_weight

    def attack(self, encode, view: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """`view` ([0, 1] images) perturbed within ε to raise NT-Xent against `positive`
        (the other view's projections, detached)."""
        def objective(x: torch.Tensor) -> torch.Tensor:
            z = self.projection(encode(x, branch="adversarial", update_statistics=False))
            return nt_xent(z, positive, self.temperature, gather_distributed=False)

        return ascend(objective, view, self.eps, self.alpha, self.steps, random_start=True)

    def loss(self, encode, images: torch.Tensor) -> torch.Tensor:
        view_a, view_b = self.views(images)
        z_a, z_b = self.projection(encode(torch.cat([view_a, view_b]))).chunk(2)
        clean = nt_xent(z_a, z_b, self.temperature, self.gather_distributed)
        attacked = self.attack(encode, view_a, z_b.detach())
        z_attacked = self.projection(encode(attacked, branch="adversarial"))
        return clean + self.adv_weight * nt_xent(z_attacked, z_b, self.temperature,
                                                 self.gather_distributed)

