"""L∞ attacks on [0, 1] images, as functions and as objects behind one interface.

The functions (FGSM with an optional random start, PGD, the ±ε noise control, AutoAttack) are
hand-written because they are a few lines each and sit in the training loop. FGSM and PGD
ascend an objective, any differentiable scalar function of the input (`ascend`): the
cross-entropy of a classifier against labels, but also, say, a contrastive loss against a
positive view. They leave the model's train/eval mode to the caller and never touch its
parameters' gradients: the input gradient comes from torch.autograd.grad, not from backward().

The objects (torchattacks' shape): an `Attack` is built from its settings (ε, steps, step
size, random start) and called on (model, images, labels); `ATTACKS` is the registry by name
that the evaluator and the FineTuner build theirs from. Adding an attack is one class and one
entry there. One step-size rule serves training and evaluation: PGD's step is
`step_ratio`·ε (default ε/4).

Two ε conventions (`eps_space`): `pixel` (the default), ε bounds each [0, 1] pixel; `normalized`,
ε bounds the classifier's normalised input (x - mean) / std, i.e. a per-channel pixel budget
ε·std_c (CIFAR-10's std, about ε/4: a common implementation choice, and perhaps the paper's).
The functions take ε (and the step) as a number or as such a per-channel tensor.
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
import torch.nn.functional as F

from robust_ssl.errors import RobustSSLError
from robust_ssl.models.backbone import CIFAR10_STD

EPS_SPACES = ("pixel", "normalized")
Objective = Callable[[torch.Tensor], torch.Tensor]  # input -> the scalar the attack raises


def pixel_budget(eps: float, eps_space: str, like: torch.Tensor) -> "float | torch.Tensor":
    """ε as a pixel budget: itself, or per channel ε·std_c in the normalised convention."""
    if eps_space == "pixel":
        return eps
    std = torch.tensor(CIFAR10_STD, dtype=like.dtype, device=like.device)
    return eps * std.view(1, -1, *([1] * (like.dim() - 2)))


def check_eps_space(eps_space: str) -> None:
    if eps_space not in EPS_SPACES:
        raise RobustSSLError(f"eps_space={eps_space!r} is unknown: choose pixel (ε bounds each "
                             "[0, 1] pixel) or normalized (ε bounds the normalised input)")


def check_epsilon(eps: float, name: str = "eps") -> None:
    if isinstance(eps, torch.Tensor):
        eps = float(eps.max())
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
    per_channel = isinstance(eps, torch.Tensor)
    if not random_start:
        delta = torch.zeros_like(x)
    elif per_channel:
        delta = torch.empty_like(x).uniform_(-1, 1).mul_(eps)
    else:
        delta = torch.empty_like(x).uniform_(-eps, eps)
    delta = (x + delta).clamp_(0, 1) - x
    for _ in range(steps):
        gradient = input_gradient(objective, x + delta)
        delta = delta + alpha * gradient.sign()
        delta = torch.clamp(delta, -eps, eps) if per_channel else delta.clamp_(-eps, eps)
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


def kl_divergence(clean_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(p_clean ‖ p), averaged over the batch (in fp32): TRADES's term, for its adversary
    and its loss alike. Both sides as log-probabilities: with p_clean as probabilities, a
    class whose probability underflows to 0 gives KL's log(0) a NaN gradient (it did, once
    logits spread beyond ~100, and the NaN spread through every weight)."""
    return F.kl_div(F.log_softmax(logits.float(), dim=1), F.log_softmax(clean_logits.float(), dim=1),
                    reduction="batchmean", log_target=True)


def kl_from(model: torch.nn.Module, clean_logits: torch.Tensor) -> Objective:
    """x -> KL(p_clean ‖ p_model(x)): TRADES's objective, which moves the prediction away from
    the clean one whatever the label."""
    clean_logits = clean_logits.detach()
    return lambda x: kl_divergence(clean_logits, model(x))


def trades_adversary(model: torch.nn.Module, x: torch.Tensor, eps: float, alpha: float,
                     steps: int, start_std: float = 0.001) -> torch.Tensor:
    """TRADES's inner maximisation (Zhang et al. 2019): `steps` signed-gradient steps of
    `alpha` on KL(p(x) ‖ p(x')), in the L∞ ball of eps around x, from x + N(0, start_std²)
    (at x itself the KL's gradient is zero)."""
    check_epsilon(eps)
    with torch.no_grad():
        clean = model(x)
    start = (x + start_std * torch.randn_like(x)).clamp_(0, 1)
    objective = kl_from(model, clean)
    adversarial = start
    for _ in range(steps):
        gradient = input_gradient(objective, adversarial)
        adversarial = adversarial + alpha * gradient.sign()
        adversarial = torch.min(torch.max(adversarial, x - eps), x + eps).clamp_(0, 1)
    return adversarial.detach()


def random_sign_noise(x: torch.Tensor, eps: float) -> torch.Tensor:
    """A control at the same budget: ±eps per pixel at random, clipped to [0, 1]."""
    check_epsilon(eps)
    sign = torch.randint_like(x, 0, 2).mul_(2).sub_(1)
    return (x + eps * sign).clamp_(0, 1)


def autoattack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float,
               batch_size: int = 250, seed: int = 0, iterations: int | None = None
               ) -> torch.Tensor:
    """Standard AutoAttack (Croce & Hein 2020; APGD-CE, APGD-T, FAB-T, Square) via pyautoattack.

    Its targeted attacks aim at the 9 runner-up classes: with fewer classes they aim at all the
    others, and below 4 classes APGD-T, whose DLR loss compares the top four logits, is left
    out (standard AutoAttack crashed on a 3-class rehearsal). `iterations` (None: standard's
    100 per APGD and FAB run, 5,000 Square queries) cuts every attack to that many, for a
    rehearsal: an image no attack breaks otherwise costs two minutes of a CPU."""
    check_epsilon(eps)
    from pyautoattack import AutoAttack

    device = next(model.parameters()).device
    attack = AutoAttack(model, eps=eps, norm="Linf", version="standard", device=device, seed=seed)
    with torch.no_grad():
        classes = model(x[:1].to(device)).shape[1]
    if classes < 10:
        attack.apgd_targeted.n_target_classes = attack.fab.n_target_classes = classes - 1
    if classes < 4:
        attack.attacks_to_run = [name for name in attack.attacks_to_run if name != "apgd-t"]
    if iterations is not None:
        attack.apgd.n_iter = attack.apgd_targeted.n_iter = attack.fab.n_iter = iterations
        attack.square.n_queries = iterations
    adversarial, _ = attack.run_standard_evaluation(x.to(device), y.to(device),
                                                    batch_size=batch_size)
    return adversarial


class Attack:
    """An attack with its settings, applied as `attack(model, images, labels)` -> images in
    the ε-ball around `images`, inside [0, 1]."""

    name = "attack"

    def __init__(self, eps: float):
        check_epsilon(eps)
        self.eps = eps

    def __call__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def metric_name(self) -> str:
        """Its name in metric keys: `fgsm`, or `fgsm-norm` in the normalised convention."""
        return self.name + ("-norm" if getattr(self, "eps_space", "pixel") == "normalized" else "")

    def description(self) -> dict:
        """The attack as a config says it: {"class_path": ..., "init_args": {...}}."""
        return {"class_path": f"{type(self).__module__}.{type(self).__qualname__}",
                "init_args": dict(vars(self))}

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class FGSM(Attack):
    """One signed-gradient step of ε (Goodfellow et al. 2015); `random_start` is FGSM-RS
    (Wong et al. 2020): a uniform start in the ball and one step of `alpha` (1.25·ε)."""

    name = "fgsm"

    def __init__(self, eps: float, random_start: bool = False, alpha: float | None = None,
                 eps_space: str = "pixel"):
        super().__init__(eps)
        check_eps_space(eps_space)
        self.random_start, self.alpha, self.eps_space = random_start, alpha, eps_space

    def __call__(self, model, x, y):
        alpha = None if self.alpha is None else pixel_budget(self.alpha, self.eps_space, x)
        return fgsm(model, x, y, pixel_budget(self.eps, self.eps_space, x), self.random_start,
                    alpha)


class PGD(Attack):
    """`steps` projected signed-gradient steps of `step_ratio`·ε on the cross-entropy, from a
    random start (Madry et al. 2018)."""

    name = "pgd"

    def __init__(self, eps: float, steps: int = 20, step_ratio: float = 0.25,
                 random_start: bool = True, eps_space: str = "pixel"):
        super().__init__(eps)
        if steps < 1:
            raise RobustSSLError(f"steps={steps}: PGD needs at least one step")
        if step_ratio <= 0:
            raise RobustSSLError(f"step_ratio={step_ratio}: a PGD step must be positive")
        check_eps_space(eps_space)
        self.steps, self.step_ratio, self.random_start = steps, step_ratio, random_start
        self.eps_space = eps_space

    def __call__(self, model, x, y):
        eps = pixel_budget(self.eps, self.eps_space, x)
        return pgd(model, x, y, eps, self.step_ratio * eps, self.steps, self.random_start)


class TRADES(Attack):
    """TRADES's adversary: `steps` steps of `step_ratio`·ε raising the KL divergence of the
    prediction from the clean one (labels unused); with the FineTuner's `trades_beta`, the
    TRADES loss CE(clean) + β·KL(clean ‖ adversarial). Defaults: TRADES's CIFAR-10 setting
    (10 steps of 2/255 at 8/255)."""

    name = "trades"

    def __init__(self, eps: float, steps: int = 10, step_ratio: float = 0.25,
                 eps_space: str = "pixel"):
        super().__init__(eps)
        if steps < 1:
            raise RobustSSLError(f"steps={steps}: TRADES's adversary needs at least one step")
        check_eps_space(eps_space)
        self.steps, self.step_ratio, self.eps_space = steps, step_ratio, eps_space

    def __call__(self, model, x, y):
        eps = pixel_budget(self.eps, self.eps_space, x)
        return trades_adversary(model, x, eps, self.step_ratio * eps, self.steps)


class Noise(Attack):
    """The control: ±ε per pixel at random."""

    name = "noise"

    def __init__(self, eps: float, eps_space: str = "pixel"):
        super().__init__(eps)
        check_eps_space(eps_space)
        self.eps_space = eps_space

    def __call__(self, model, x, y):
        return random_sign_noise(x, pixel_budget(self.eps, self.eps_space, x))


class StandardAutoAttack(Attack):
    """Standard AutoAttack through pyautoattack (imported only when one runs); pixel ε only
    (it takes one number)."""

    name = "autoattack"

    def __init__(self, eps: float, seed: int = 0, batch_size: int = 250,
                 iterations: int | None = None):
        super().__init__(eps)
        self.seed, self.batch_size, self.iterations = seed, batch_size, iterations

    def __call__(self, model, x, y):
        return autoattack(model, x, y, self.eps, self.batch_size, self.seed, self.iterations)


ATTACKS: dict[str, type[Attack]] = {a.name: a for a in (FGSM, PGD, TRADES, Noise,
                                                          StandardAutoAttack)}


def build_attack(name: str, eps: float, **settings) -> Attack:
    """The registered attack `name` at budget `eps`; settings it does not take are ignored, so
    one set of options (steps, step_ratio, random_start, ...) can build any of them."""
    if name not in ATTACKS:
        raise RobustSSLError(f"unknown attack {name!r}: choose from {', '.join(ATTACKS)}")
    kind = ATTACKS[name]
    accepted = inspect.signature(kind.__init__).parameters
    return kind(eps, **{k: v for k, v in settings.items() if k in accepted})
