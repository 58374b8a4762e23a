"""Fine-tuning: the FineTuner (linear | partial | full, its training attack injected).

`robust_ssl.finetune.FineTuner` is the class path the configs name.
"""

from robust_ssl.finetune.finetuner import FineTuner

__all__ = ["FineTuner"]
