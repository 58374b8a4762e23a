"""A fine-tuned classifier from its checkpoint, with one clear error for anything else."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from robust_ssl.errors import RobustSSLError
from robust_ssl.finetune import FineTuner


def load_classifier(checkpoint: str) -> FineTuner:
    """A FineTuner from its Lightning checkpoint (weights only; the encoder file is not reread).

    Anything else (an empty or damaged file, a pretraining checkpoint, a pickled object, a
    classifier of another architecture) is one RobustSSLError that says what the file is.
    """
    path = Path(checkpoint)
    try:
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # EOF, unpickling, zip errors: all mean "not a checkpoint"
        raise RobustSSLError(
            f"cannot read classifier checkpoint '{path}' ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'empty or damaged'}): give the "
            "classifier.ckpt that fine-tuning wrote") from None
    hparams = entry.get("hyper_parameters", {}) if isinstance(entry, dict) else {}
    state = entry.get("state_dict", {}) if isinstance(entry, dict) else {}
    if not hparams.get("num_classes") or "classifier.weight" not in state:
        kind = ("a pretraining checkpoint" if any(k.startswith("tasks.") for k in state)
                else "not a Lightning checkpoint" if not state else "another model's checkpoint")
        raise RobustSSLError(f"'{path}' is not a FineTuner checkpoint ({kind}): give the "
                             "classifier.ckpt that fine-tuning wrote")
    try:
        accepted = inspect.signature(FineTuner.__init__).parameters
        # neither the encoder file nor the training attack: the weights are the classifier
        model = FineTuner(**{k: v for k, v in hparams.items() if k in accepted
                             and k not in ("encoder_path", "attack")})
        model.load_state_dict(state)
        model.on_load_checkpoint(entry)
    except (RobustSSLError, RuntimeError, TypeError, ValueError) as error:
        raise RobustSSLError(f"'{path}' is not a FineTuner checkpoint of this architecture "
                             f"({str(error).splitlines()[0]})") from None
    return model
