"""Progress of a long command in one style: `[k/N] what: step (time so far, about T left)`,
T from the mean time of the steps so far. Off a terminal (a log file, CI) each step is one
line; on a terminal the same line is redrawn in place behind a bar and the last one stays.
The grid's cells (runs/executors.py) and the commands that loop over many steps (the claims
audit, the budget benchmark, generating corrupted test sets) all report through it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR = 20  # characters


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def line(number: int, total: int, what: str, elapsed: float, left: float | None) -> str:
    projection = f", about {duration(left)} left" if left is not None else ""
    return f"[{number}/{total}] {what} ({duration(elapsed)} so far{projection})"


class Steps:
    """`step(label)` after each of `total` steps; `parallel` steps run at once (the
    projection divides by it)."""

    def __init__(self, total: int, what: str, stream: TextIO | None = None, parallel: int = 1):
        self.total, self.what, self.parallel = total, what, max(parallel, 1)
        self.stream = stream or sys.stdout
        self.terminal = self.stream.isatty()
        self.start, self.done = time.perf_counter(), 0

    def left(self, done: int) -> float | None:
        if not done or done >= self.total:
            return None
        return (time.perf_counter() - self.start) / done * (self.total - done) / self.parallel

    def step(self, label: str) -> None:
        self.done += 1
        text = line(self.done, self.total, f"{self.what}: {label}",
                    time.perf_counter() - self.start, self.left(self.done))
        if self.terminal:
            filled = round(BAR * self.done / max(self.total, 1))
            end = "\n" if self.done >= self.total else ""
            self.stream.write(f"\r\033[K{'█' * filled}{'·' * (BAR - filled)} {text}{end}")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
