"""What a stage wrote, as it wrote it: after each stage the size, modification time and SHA-256
of every file it leaves (encoder, checkpoint, classifier, result JSON, records) go into a record
beside its fingerprint (`<config>.outputs.json`). A cell is read as finished only when those
files still match: size and time first (free), the hash when they differ (a copied tree) or on
VERIFY=1. So a file truncated or altered after it was written is named, with the way out,
instead of being read as a result.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from robust_ssl.plumbing.files import sha256, write_text_atomically


def record_of(run_dir: Path, config_name: str) -> Path:
    """`config.outputs.json`, `evaluate.outputs.json`, `import.outputs.json`."""
    return run_dir / f"{Path(config_name).stem}.outputs.json"


def name_in(path: Path, root: str) -> str:
    """The file's name relative to the results root (so a moved tree still matches)."""
    relative = os.path.relpath(os.path.abspath(path), root)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


def write(record: Path, files: list[Path], root: str) -> None:
    """Record each of `files` that exists, as it is now."""
    entries = {}
    for path in files:
        if path.is_file():
            status = path.stat()
            entries[name_in(path, root)] = {"size": status.st_size,
                                            "mtime_ns": status.st_mtime_ns,
                                            "sha256": sha256(path)}
    write_text_atomically(record, json.dumps(entries, indent=1, sort_keys=True) + "\n")


def damage(record: Path, root: str, full: bool = False) -> list[str]:
    """What no longer matches the record, one phrase per file ([] when all do, or when no
    record was made: results written before records were)."""
    if not record.is_file():
        return []
    try:
        entries = json.loads(record.read_text())
    except ValueError:
        return [f"{record.name} (the record itself) is damaged"]
    problems = []
    for name, written in sorted(entries.items()):
        path = Path(name) if os.path.isabs(name) else Path(root) / name
        if not path.is_file():
            problems.append(f"{name} is missing")
            continue
        status = path.stat()
        if status.st_size != written["size"]:
            problems.append(f"{name} has {status.st_size:,} bytes, {written['size']:,} when "
                            "written (truncated or overwritten)")
        elif (full or status.st_mtime_ns != written["mtime_ns"]) and sha256(path) != written["sha256"]:
            problems.append(f"{name} differs from what was written (its SHA-256)")
    return problems


def message(run_dir: Path, stage: str, problems: list[str]) -> str:
    return (f"{run_dir.name}: the {stage} stage's results were changed or damaged after they "
            f"were written: {'; '.join(problems)}. RESTART=1 for make (--restart) redoes this "
            "stage, and the stages that read it then see their input changed and are redone "
            "with it")
