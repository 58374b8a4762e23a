"""Networks: the encoders (with their normalisation inside) and the task heads."""

from robust_ssl.models.backbone import Encoder

__all__ = ["Encoder"]
