"""One writer per cell: whatever runs a cell (the local executor's child, a SLURM job, a
hand-run `python -m robust_ssl.runs.run`) holds an OS lock on `<results>/<cell>.lock` while it
runs, so two grids on one results tree never train the same cell at once.

The lock is `fcntl.lockf`, a POSIX record lock: the kernel drops it when its process ends, a
crash and `kill -9` included, so no marker outlives its writer; and it is the lock that network
file systems carry between machines (NFSv3 through the NLM lock manager, NFSv4 natively, where
a dead client's locks expire with its lease; Lustre and GPFS with their POSIX-lock support
mounted), where `flock` is at best emulated. A POSIX lock belongs to its process (a forked
child does not inherit it) and is released when the process closes any descriptor of the file:
so each holder opens the file once and the grid only ever tests it briefly.

The file is removed by its holder on release. Taking the lock checks, after locking, that the
path still names the locked file (a holder that released and removed it in between would
otherwise leave two writers on two inodes); a file that outlived a killed holder is removed by
the next look at it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from robust_ssl.errors import RobustSSLError

BUSY = (errno.EACCES, errno.EAGAIN)  # what lockf's non-blocking try raises on a held lock


def lock_path(run_dir: str | os.PathLike) -> Path:
    """`<results>/<cell>.lock`, beside the cell's run directory and its result JSON."""
    run_dir = Path(run_dir)
    return run_dir.with_name(run_dir.name + ".lock")


def describe(holder: dict | None) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"process {holder.get('pid')} on {holder.get('host')} (since {since})"


def read_holder(fd: int) -> dict | None:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"null")
    except (OSError, ValueError):
        return None


def same_file(fd: int, path: Path) -> bool:
    try:
        mine, named = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (mine.st_dev, mine.st_ino) == (named.st_dev, named.st_ino)


def try_lock(fd: int, path: Path) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as error:
        if error.errno in BUSY:
            return False
        raise unlockable(path, error) from None


def unlockable(path: Path, error: OSError) -> RobustSSLError:
    return RobustSSLError(
        f"cannot lock '{path}' ({error.strerror or error}): the results tree must be on a file "
        "system with POSIX locks (an NFS mount needs its lock service, not `nolock`); choose "
        "another RESULTS (--run-dir)")


def holder(run_dir: str | os.PathLike) -> dict | None:
    """Who holds the cell's lock ({"pid", "host", "since"}; {} if it wrote nothing yet), or
    None when nobody does. A lock file nobody holds (its holder was killed) is removed."""
    path = lock_path(run_dir)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:  # none, or one this process may not write: it cannot be locked here either
        return None
    try:
        if not try_lock(fd, path):
            return read_holder(fd) or {}
        if same_file(fd, path):
            path.unlink()  # stale: held by us now, so no one can be using it
        return None
    finally:
        os.close(fd)  # drops our test lock with the descriptor


@contextmanager
def hold(run_dir: str | os.PathLike, waiting=None):
    """Hold the cell's lock for the block. When another process holds it, `waiting(holder)` is
    called once and the lock is awaited (the cell then usually finds its result up to date)."""
    path = lock_path(run_dir)
    told = False
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RobustSSLError(
                f"cannot write to '{path.parent}' ({error.strerror or error}): choose a "
                "writable results directory (RESULTS=... for make, --run-dir)") from None
        try:
            if not try_lock(fd, path):
                if waiting is not None and not told:
                    waiting(read_holder(fd))
                    told = True
                fcntl.lockf(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        if same_file(fd, path):
            break
        os.close(fd)  # the holder removed it as we waited: lock the path's new file
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.time()}).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # removed while still held: see the module's docstring
        os.close(fd)
