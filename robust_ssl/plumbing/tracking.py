"""Weights & Biases mode: offline unless the user asks, and an online request that cannot reach
the server fails at once instead of retrying for minutes."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from robust_ssl.errors import RobustSSLError

MODES = ("offline", "online", "off")


def wandb_mode(requested: str | None = None) -> str:
    """`requested`, else $WANDB, else offline; online only after the server answered."""
    mode = requested or os.environ.get("WANDB", "offline")
    if mode not in MODES:
        raise RobustSSLError(f"WANDB={mode!r}: choose offline (the default), online or off")
    if mode == "online":
        host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
        try:
            socket.create_connection((host, 443), timeout=5).close()
        except OSError as error:
            raise RobustSSLError(
                f"WANDB=online but {host} cannot be reached ({error}): run with WANDB=offline "
                "and upload later with `wandb sync`, or WANDB=off for CSV logs only"
            ) from error
    return mode
