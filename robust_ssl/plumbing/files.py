"""The one way the suite writes a file that something else will trust: to `<name>.partial`, then
renamed into place. A killed process leaves the previous file or the new one, never half of one
that looks finished (checkpoints, encoders, results, fingerprints, data caches, exports); and
the one way it names a file's contents, its SHA-256."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call `write(partial_path)`, then rename the partial file onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write `text` unless the file already holds it (its time stamp then stays, for make)."""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return
    replace_atomically(path, lambda partial: partial.write_text(text))


def save_atomically(obj, path: str | os.PathLike) -> Path:
    """torch.save through a partial file."""
    import torch

    return replace_atomically(path, lambda partial: torch.save(obj, partial))


def sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256, hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
