"""Data layer: in-memory uint8 splits, stratified label fractions, batched augmentation."""

from robust_ssl.data.sources import Split, load_split

__all__ = ["Split", "load_split"]
