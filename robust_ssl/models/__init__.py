"""Networks: the ResNet-18 encoder (with its normalisation inside) and the task heads."""

from robust_ssl.models.backbone import ResNet18Encoder

__all__ = ["ResNet18Encoder"]
