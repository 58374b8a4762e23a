"""Per-image records: whether each test image survived each attack setting, and what follows
from them on the same images (auto-attack's `robust_flags`): accuracies, the worst case per
image over the attacks at one ε, the metrics of a subset, the corruptions' accuracies."""

from __future__ import annotations

import numpy as np
import torch

from robust_ssl.evaluation.result import CORRUPTION, budget_key, budgets, eps_value, key

WORST_CASE = ("fgsm", "pgd", "autoattack")  # attacks that count in the worst case (not noise)

Records = dict[str, tuple[torch.Tensor, torch.Tensor]]  # metric key -> (ran, right) per image


def worst_case(records: Records, eps: float, mask: torch.Tensor, suffix: str = "") -> float:
    """Accuracy counting an image right only if every attack at `eps` that ran on all of
    `mask` left it right; `suffix` "-norm": the attacks in the normalised ε convention."""
    survived = mask.clone()
    names = [key(a + suffix, eps) for a in WORST_CASE]
    used = [n for n in names if n in records and records[n][0][mask].all()]
    if not used:
        return float("nan")
    for name in used:
        survived &= records[name][1]
    return survived[mask].float().mean().item()


def subset_metrics(records: Records, mask: torch.Tensor) -> dict[str, float]:
    """Every setting that ran on all of the subset, and the worst case at each ε, on it alone:
    the numbers to compare with what ran only there."""
    found = {name: right[mask].float().mean().item() for name, (ran, right) in records.items()
             if ran[mask].all()}
    for budget in budgets(found):
        worst = worst_case(records, eps_value(budget), mask)
        if worst == worst:  # not NaN
            found[budget_key("worst", budget)] = worst
    return found


def corruption_accuracies(records: dict[str, tuple]) -> dict:
    """From `corruption/<name>/<severity>` records (ran, right): each set's accuracy, their
    mean, and the means per severity and per corruption (sets of equal size: the mean of
    means is the mean over every corrupted image)."""
    each = {k.removeprefix(CORRUPTION): float(np.mean(right)) for k, (_, right) in records.items()}

    def mean(chosen) -> float:
        chosen = list(chosen)
        return float(np.mean(chosen)) if chosen else float("nan")

    names = dict.fromkeys(k.partition("/")[0] for k in each)
    severities = dict.fromkeys(k.partition("/")[2] for k in each)
    return {"mean": mean(each.values()),
            "per_severity": {s: mean(v for k, v in each.items() if k.partition("/")[2] == s)
                             for s in severities},
            "per_corruption": {n: mean(v for k, v in each.items() if k.partition("/")[0] == n)
                               for n in names},
            "each": each}
