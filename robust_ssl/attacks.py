"""L∞ attacks in [0, 1] pixel space: FGSM (with an optional random start) and PGD.

Hand-written because they are a few lines each and sit in the training loop. They leave the
model's train/eval mode to the caller and never touch its parameters' gradients: the input
gradient comes from torch.autograd.grad, not from backward().
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robust_ssl.errors import RobustSSLError


def check_epsilon(eps: float, name: str = "eps") -> None:
    if not 0.0 <= eps <= 1.0:
        raise RobustSSLError(f"{name}={eps} is outside [0, 1]: budgets are in [0, 1] pixel units, "
                             "e.g. 8/255 = 0.0314")


def input_gradient(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇_x of the cross-entropy at x, leaving parameter .grad fields untouched."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y)
        (gradient,) = torch.autograd.grad(loss, x)
    return gradient


def fgsm(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
         random_start: bool = False, alpha: float | None = None) -> torch.Tensor:
    """x + eps·sign(∇_x loss) (Goodfellow et al. 2015), clipped to [0, 1].

    With `random_start`, FGSM-RS (Wong et al. 2020): start at a uniform point of the ε-ball,
    take one step of `alpha` (default 1.25·ε) and project back onto the ball.
    """
    check_epsilon(eps)
    if not random_start:
        return (x + eps * input_gradient(model, x, y).sign()).clamp_(0, 1).detach()
    alpha = 1.25 * eps if alpha is None else alpha
    return pgd(model, x, y, eps, alpha, steps=1, random_start=True)


def pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float,
        steps: int, random_start: bool = True) -> torch.Tensor:
    """Projected gradient descent on the cross-entropy (Madry et al. 2018), L∞ ball of eps."""
    check_epsilon(eps)
    if steps < 1:
        raise RobustSSLError(f"steps={steps}: PGD needs at least one step")
    delta = torch.empty_like(x).uniform_(-eps, eps) if random_start else torch.zeros_like(x)
    delta = (x + delta).clamp_(0, 1) - x
    for _ in range(steps):
        gradient = input_gradient(model, x + delta, y)
        delta = (delta + alpha * gradient.sign()).clamp_(-eps, eps)
        delta = (x + delta).clamp_(0, 1) - x
    return (x + delta).detach()


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
