"""The validation history: one record per validation of a FineTuner, kept in its checkpoints
(`validation_history`) and copied into the result, where the catastrophic-overfitting check
(evaluation/sanity.py) reads the robust accuracy of each record."""

from __future__ import annotations

from typing import TypedDict

ROBUST = "pgd_acc"  # the robust accuracy of a record: PGD-10 on the first validation images
FIELDS = ("acc", "fgsm_acc", ROBUST)  # logged as val/<field>


class ValidationRecord(TypedDict, total=False):
    epoch: int
    acc: float  # clean
    fgsm_acc: float
    pgd_acc: float


def validation_record(epoch: int, logged: dict[str, float]) -> ValidationRecord:
    """The record of one validation from the metrics logged as `val/<field>`."""
    return {"epoch": epoch} | {name: float(logged[f"val/{name}"]) for name in FIELDS
                               if f"val/{name}" in logged}
