"""L∞ attacks in [0, 1] pixel space: FGSM (with an optional random start) and PGD.

Hand-written because they are a few lines each and sit in the training loop. Both ascend an
objective, any differentiable scalar function of the input (`ascend`): the cross-entropy of a
classifier against labels for FGSM and PGD, but also, say, a contrastive loss against a
positive view. They leave the model's train/eval mode to the caller and never touch its
parameters' gradients: the input gradient comes from torch.autograd.grad, not from backward().
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from robust_ssl.errors import RobustSSLError

Objective = Callable[[torch.Tensor], torch.Tensor]  # input -> the scalar the attack raises


def check_epsilon(eps: float, name: str = "eps") -> None:
    if not 0.0 <= eps <= 1.0:
        raise RobustSSLError(f"{name}={eps} is outside [0, 1]: budgets are in [0, 1] pixel units, "
                             "e.g. 8/255 = 0.0314")


def cross_entropy(model: torch.nn.Module, y: torch.Tensor) -> Objective:
    return lambda x: F.cross_entropy(model(x), y)


def input_gradient(objective: Objective, x: torch.Tensor) -> torch.Tensor:
    """∇_x objective(x), leaving parameter .grad fields untouched."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(objective(x), x)
    return gradient


def ascend(objective: Objective, x: torch.Tensor, eps: float, alpha: float, steps: int,
           random_start: bool = True) -> torch.Tensor:
    """Projected sign-gradient ascent of `objective` in the L∞ ball of eps around x, inside
    [0, 1]: PGD (Madry et al. 2018) for any objective; one step of alpha = eps from x is FGSM."""
    check_epsilon(eps)
    if steps < 1:
        raise RobustSSLError(f"steps={steps}: PGD needs at least one step")
    delta = torch.empty_like(x).uniform_(-eps, eps) if random_start else torch.zeros_like(x)
    delta = (x + delta).clamp_(0, 1) - x
    for _ in range(steps):
        gradient = input_gradient(objective, x + delta)
        delta = (delta + alpha * gradient.sign()).clamp_(-eps, eps)
        delta = (x + delta).clamp_(0, 1) - x
    return (x + delta).detach()


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
         random_start: bool = False, alpha: float | None = None) -> torch.Tensor:
    """x + eps·sign(∇_x loss) (Goodfellow et al. 2015), clipped to [0, 1].

    With `random_start`, FGSM-RS (Wong et al. 2020): start at a uniform point of the ε-ball,
    take one step of `alpha` (default 1.25·ε) and project back onto the ball.
    """
    check_epsilon(eps)
    if not random_start:
        gradient = input_gradient(cross_entropy(model, y), x)
        return (x + eps * gradient.sign()).clamp_(0, 1).detach()
    alpha = 1.25 * eps if alpha is None else alpha
    return ascend(cross_entropy(model, y), x, eps, alpha, steps=1, random_start=True)


def pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float,
        steps: int, random_start: bool = True) -> torch.Tensor:
    """Projected gradient descent on the cross-entropy (Madry et al. 2018), L∞ ball of eps."""
    return ascend(cross_entropy(model, y), x, eps, alpha, steps, random_start)


def random_sign_noise(x: torch.Tensor, eps: float) -> torch.Tensor:
    """A control at the same budget: ±eps per pixel at random, clipped to [0, 1]."""
    check_epsilon(eps)
    sign = torch.randint_like(x, 0, 2).mul_(2).sub_(1)
    return (x + eps * sign).clamp_(0, 1)


def autoattack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
               batch_size: int = 250, seed: int = 0) -> torch.Tensor:
    """Standard AutoAttack (Croce & Hein 2020; APGD-CE, APGD-T, FAB-T, Square) via pyautoattack."""
    check_epsilon(eps)
    from pyautoattack import AutoAttack

    device = next(model.parameters()).device
    attack = AutoAttack(model, eps=eps, norm="Linf", version="standard", device=device, seed=seed)
    adversarial, _ = attack.run_standard_evaluation(x.to(device), y.to(device),
                                                    batch_size=batch_size)
    return adversarial
