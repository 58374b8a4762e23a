"""Sanity checks a careful reader of robustness numbers asks for (Carlini et al. 2019): each
compares numbers measured on the same images and names what a failure suggests (a broken
attack, a masked gradient, catastrophic overfitting). Failed checks are stored in the result,
warned about, and marked in the tables."""

from __future__ import annotations

from robust_ssl.evaluation.records import WORST_CASE
from robust_ssl.evaluation.result import budget_key, budgets, eps_name, key, parse_key
from robust_ssl.finetune.history import ROBUST, ValidationRecord

# FGSM this far above PGD at the same ε (both more than 5 points apart and twice as high) is
# the signature of a masked gradient or of catastrophic overfitting (Wong et al. 2020)
FGSM_GAP, FGSM_RATIO = 0.05, 2.0
COLLAPSE = 0.05  # accuracy that PGD at the large ε must fall under
# a stronger attack may read this much above a weaker one before it is flagged: PGD's random
# start lands a point or two of 200 images either way at ε = 1-2/255
MARGIN = 0.01


def sanity_checks(metrics: dict[str, float], subsets: dict[str, dict[str, float]],
                  eps: float, large_eps: float | None,
                  history: list[ValidationRecord] | None = None) -> dict:
    """Flags for numbers that suggest a broken attack, a masked gradient or catastrophic
    overfitting. Each comparison uses numbers from the same images; `history` is the
    classifier's validation record. Returns {"passed", "failed": [check names],
    "warnings": [messages]}."""
    failed: dict[str, str] = {}
    collapse = overfitting_collapse(history or [])
    if collapse:
        failed["catastrophic_overfitting"] = collapse
    sets = [("", metrics)] + [(f" (on the {n} subset)", m) for n, m in subsets.items()]
    for where, values in sets:
        clean = values.get("clean")
        attacked = sorted(k for k, v in values.items() if parse_key(k)[0] in WORST_CASE
                          and clean is not None and v > clean + MARGIN)
        if attacked:
            failed.setdefault("above_clean", f"attacked accuracy above clean ({clean:.4f}) for "
                                             f"{', '.join(attacked)}{where}")
        for e in budgets(values):
            one, many = values.get(budget_key("fgsm", e)), values.get(budget_key("pgd", e))
            if one is None or many is None:
                continue
            if many > one + MARGIN:
                failed.setdefault("pgd_above_fgsm", f"PGD accuracy {many:.4f} above FGSM "
                                  f"{one:.4f} at {e}{where}: a weak PGD or gradient masking")
            elif one - many > FGSM_GAP and one > FGSM_RATIO * many:
                failed.setdefault("fgsm_far_above_pgd", f"FGSM accuracy {one:.4f} far above "
                                  f"PGD {many:.4f} at {e}{where}: one step fails where twenty "
                                  "succeed (gradient masking or catastrophic overfitting)")
    name = eps_name(eps)
    fgsm_acc, noise_acc = metrics.get(key("fgsm", eps)), metrics.get(key("noise", eps))
    if fgsm_acc is not None and noise_acc is not None and noise_acc < fgsm_acc:
        failed["noise_beats_fgsm"] = (f"random noise ({noise_acc:.4f}) hurts more than FGSM "
                                      f"({fgsm_acc:.4f}) at {name}: the attack is not working")
    large = metrics.get(key("pgd", large_eps)) if large_eps is not None else None
    if large is not None and large > COLLAPSE:
        failed["no_collapse"] = (f"accuracy {large:.4f} under PGD at {eps_name(large_eps)} is not "
                                 "near zero: possible gradient masking")
    on_subset = subsets.get("autoattack", {})
    auto, many = on_subset.get(key("autoattack", eps)), on_subset.get(key("pgd", eps))
    if auto is not None and many is not None and auto > many + MARGIN:
        failed["autoattack_above_pgd"] = (f"AutoAttack accuracy {auto:.4f} above PGD {many:.4f} "
                                          f"on the same images at {name}: AutoAttack misused")
    return {"passed": not failed, "failed": list(failed), "warnings": list(failed.values())}


def overfitting_collapse(history: list[ValidationRecord]) -> str | None:
    """Catastrophic overfitting in a validation history: robust accuracy that ends below half
    its best and more than 5 points under it (Wong et al. 2020 saw it fall to ~0 within an
    epoch)."""
    measured = [h for h in history if ROBUST in h]
    if len(measured) < 2:
        return None
    best, last = max(measured, key=lambda h: h[ROBUST]), measured[-1]
    if best[ROBUST] - last[ROBUST] > FGSM_GAP and last[ROBUST] < best[ROBUST] / 2:
        return (f"validation PGD accuracy fell from {best[ROBUST]:.4f} (epoch {best['epoch']}) "
                f"to {last[ROBUST]:.4f} at the end, FGSM {last.get('fgsm_acc', float('nan')):.4f}: "
                "catastrophic overfitting; model.random_start=true trains with FGSM-RS")
    return None
