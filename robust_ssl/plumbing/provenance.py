"""What produced a result: the package versions and the code's git commit, written into every
result JSON. Torch-free; beneath everything, so a run can read its commit as it starts."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "pytorch-lightning", "torchmetrics", "kornia", "pyautoattack",
            "robust-ssl")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


@functools.cache
def git_commit() -> str | None:
    """The checkout's commit, suffixed -dirty when it has uncommitted changes. Read once per
    process and kept: a run reads it as it starts (`run_cli`, the grid's `warm_up` before it
    forks cells), so the result names the code the process loaded, not a checkout that moved
    while it ran."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40",
                              "--exclude=*"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
