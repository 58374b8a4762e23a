"""The one way the suite writes a file that something else will trust: to
`<name>.<host>.<pid>.partial`, then renamed into place. A killed process leaves the previous file
or the new one, never half of one that looks finished, and its partial file goes with the next
write of the same file (checkpoints, encoders, results, fingerprints, data caches, exports); a full
disk or quota leaves the previous file too, and one error that says how much was needed. And
the one way the suite names a file's contents, its SHA-256."""

from __future__ import annotations

import errno
import glob
import hashlib
import io
import os
import shutil
import socket
from pathlib import Path
from typing import Callable

from robust_ssl.errors import RobustSSLError

OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)
HOST = socket.gethostname().split(".")[0].replace("/", "_")  # whose partial files these are


class DiskFullError(RobustSSLError):
    """A write that found no space (or quota) left."""


def out_of_space(path: Path, needed: int | None, quota: bool) -> DiskFullError:
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:,.1f} MiB free"
    except OSError:
        free = "free space unknown"
    need = f", {needed / 2**20:,.1f} MiB needed" if needed else ""
    return DiskFullError(
        f"no space left to write '{path}' ({'the quota is exceeded' if quota else free}{need}): "
        "free space there or choose another RESULTS; every file written before is intact, and "
        "the next run resumes the cell from its last checkpoint")


def replace_atomically(path: str | os.PathLike, write: Callable[[Path], object],
                       size: int | None = None) -> Path:
    """Call `write(partial_path)`, then rename the partial file onto `path`; `size`: what it
    writes, for the message when the disk is full."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(path)
    partial = path.with_name(f"{path.name}.{HOST}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)  # first, so that the space it took counts as free
        if error.errno in OUT_OF_SPACE:
            raise out_of_space(path, size, error.errno == errno.EDQUOT) from None
        raise
    finally:
        partial.unlink(missing_ok=True)
    return path


def remove_stale_partials(path: Path) -> None:
    """Partial files of `path` that a killed writer on this machine left (its process is gone;
    another machine's partials, on a shared file system, are not this one's to judge)."""
    for partial in path.parent.glob(f"{glob.escape(path.name)}.{glob.escape(HOST)}.*.partial"):
        pid = partial.name[len(path.name) + len(HOST) + 2:-len(".partial")]
        if pid.isdigit() and not alive(int(pid)):
            partial.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write `text` unless the file already holds it (its time stamp then stays, for make)."""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        remove_stale_partials(path)
        return
    data = text.encode()
    replace_atomically(path, lambda partial: partial.write_bytes(data), len(data))


def save_atomically(obj, path: str | os.PathLike) -> Path:
    """torch.save through a partial file. Serialised in memory first: torch's own file writer
    reports a full disk as an unrelated RuntimeError ("unexpected pos"), a plain write as
    ENOSPC."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getbuffer()
    return replace_atomically(path, lambda partial: partial.write_bytes(data), len(data))


def sha256(path: str | os.PathLike) -> str:
    """The file's SHA-256, hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
