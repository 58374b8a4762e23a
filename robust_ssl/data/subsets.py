"""Stratified, seeded label fractions with a validation split held out first.

For each class the indices are shuffled once by a seeded generator: the first `val_fraction`
go to validation, and the label fraction is the first `fraction` of the rest. So the same seed
gives the same indices on every machine, and a smaller fraction is a subset of a larger one.
"""

from __future__ import annotations

import torch

from robust_ssl.errors import DataError


def check_fraction(fraction: float, name: str = "fraction") -> None:
    if not 0.0 < fraction <= 1.0:
        raise DataError(f"{name}={fraction} is outside (0, 1]: use e.g. 0.01, 0.1, 0.3 or 1.0")


def stratified_split(
    labels: torch.Tensor, fraction: float, val_fraction: float = 0.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (train, val) index tensors, both sorted, stratified by class.

    `val_fraction` of each class is held out for validation before `fraction` of the remaining
    images of each class is taken for training.
    """
    check_fraction(fraction)
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction={val_fraction} is outside [0, 1): use e.g. 0.1, or 0 for "
                        "no validation split")
    generator = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_val = _round_half_up(val_fraction * len(members))
        pool = members[n_val:]
        if len(pool) == 0:
            raise DataError(f"val_fraction={val_fraction} leaves class {label} no training image "
                            f"(it has {len(members)}): lower val_fraction")
        n_train = _round_half_up(fraction * len(pool))
        if n_train == 0:
            raise DataError(
                f"fraction={fraction} gives class {label} no training image ({len(pool)} "
                f"available after validation): use a fraction of at least {0.5 / len(pool):.3g}"
            )
        val.append(members[:n_val])
        train.append(pool[:n_train])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def _round_half_up(value: float) -> int:
    return int(value + 0.5)


def stratified_limit(labels: torch.Tensor, limit: int | None, seed: int = 0) -> torch.Tensor:
    """Sorted indices of about `limit` images (all when None or larger), the same share of each
    class and at least one of each: a size cap that works on tiny and on full datasets alike."""
    if limit is None or limit >= len(labels):
        return torch.arange(len(labels))
    if limit < 1:
        raise DataError(f"a limit of {limit} images keeps nothing: use a positive number or null")
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for label in torch.unique(labels).tolist():
        members = torch.nonzero(labels == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        keep.append(members[:max(1, _round_half_up(limit * len(members) / len(labels)))])
    return torch.cat(keep).sort().values
