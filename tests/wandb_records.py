"""What an offline W&B run holds, read from its `.wandb` file: a LevelDB-style log of
wandb's protobuf `Record`s (a 7-byte header, then 32 KiB blocks of checksummed chunks), as
`wandb sync` reads it. For tests: what the suite logged is what a synced dashboard shows."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

BLOCK = 32 * 1024
CHUNK_HEADER = 7  # crc32c (4), length (2), kind (1)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    position, pending = 7, b""
    while position + CHUNK_HEADER <= len(data):
        left = BLOCK - position % BLOCK
        if left < CHUNK_HEADER:  # a block's tail too short for a header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + CHUNK_HEADER])
        position += CHUNK_HEADER
        pending += data[position:position + length]
        position += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@dataclass
class Artifact:
    name: str
    type: str
    digest: str
    used: bool  # logged as an input of the run (a use edge), not as its output
    files: list[str]
    references: list[str]


@dataclass
class Run:
    path: Path
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)  # the last value of each logged key
    artifacts: list[Artifact] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def outputs(self, kind: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.type == kind and not a.used]

    def inputs(self, kind: str) -> list[Artifact]:
        return [a for a in self.artifacts if a.type == kind and a.used]


def item_key(item) -> list[str]:
    return list(item.nested_key) or [item.key]


def set_nested(into: dict, path: list[str], value) -> None:
    """A config update at a nested key; a mapping merges into the mapping already there (as
    wandb merges `_wandb`'s parts)."""
    for part in path[:-1]:
        into = into.setdefault(part, {})
    if isinstance(value, dict) and isinstance(into.get(path[-1]), dict):
        for key, inner in value.items():
            set_nested(into[path[-1]], [key], inner)
    else:
        into[path[-1]] = value


def read_run(path: Path) -> Run:
    run = Run(path)
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.name, run.group, run.job_type = r.display_name, r.run_group, r.job_type
            run.tags = list(r.tags)
            for item in r.config.update:
                set_nested(run.config, item_key(item), json.loads(item.value_json))
        elif kind == "config":
            for item in record.config.update:
                set_nested(run.config, item_key(item), json.loads(item.value_json))
        elif kind == "history":
            for item in record.history.item:
                run.history[".".join(item_key(item))] = json.loads(item.value_json)
        elif kind == "artifact":
            a = record.artifact
            entries = list(a.manifest.contents)
            run.artifacts.append(Artifact(
                a.name, a.type, a.digest, a.use_after_commit,
                [e.path for e in entries if not e.ref], [e.ref for e in entries if e.ref]))
        elif kind == "files":
            run.files += [f.path for f in record.files.files]
    run.config = {k: v.get("value", v) if isinstance(v, dict) else v
                  for k, v in run.config.items()}
    return run


def offline_runs(root: Path) -> list[Run]:
    return [read_run(p) for p in sorted(root.rglob("offline-run-*/run-*.wandb"))]
