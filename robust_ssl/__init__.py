"""robust-ssl: adversarial robustness through self-supervised pretraining."""

__version__ = "0.1.0"
