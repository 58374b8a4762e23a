"""A run's result: the one JSON an evaluated cell leaves, its metric keys and ε names, written
and read here and nowhere else. Torch-free, so the report and the grid read results without
importing torch.

A metric key is `clean` or `<attack>@<ε name>` (`pgd@8/255`); ε names read as budgets are
written (`8/255`). The JSON holds the run's name and seed, the table's ε, the metrics on every
test image, the same on the sweep and AutoAttack subsets, the numbers of examples, the sanity
checks, the classifier's validation history, the data source, the pretraining (the encoder's
pretext task and data set; null for a classifier trained from scratch), the config, wall time,
device, package versions and git commit.

Beside it, `<name>.records.npz` keeps whether each test image survived each setting (one bit
per image and setting, with the images' indices in the test split), so two cells evaluated on
the same split compare image by image (report/claims.py). Corrupted images (`corruption/<name>/
<severity>` keys) are a set of their own, with their own indices: the test split's when they
are its images corrupted, the published set's otherwise (the JSON's `corruptions.paired`).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robust_ssl.errors import RobustSSLError
from robust_ssl.plumbing.files import replace_atomically, write_text_atomically

TABLE_EPS = 8 / 255  # the budget of every table and of the paper's FGSM columns
CORRUPTION = "corruption/"  # keys of a corruption at a severity, corruption/fog/3, and their
CORRUPTION_MEAN = "corruption/mean"  # mean over every corruption and severity evaluated


def eps_name(eps: float) -> str:
    """8/255 -> '8/255': budgets read as they are usually written."""
    return f"{round(eps * 255, 2):g}/255"


def eps_value(name: str) -> float:
    """'8/255' -> 0.0314 (the inverse of eps_name)."""
    return float(name.split("/")[0]) / 255


def key(attack: str, eps: float | None = None) -> str:
    """The metric key of `attack` at `eps` ('clean' has no budget)."""
    return "clean" if attack == "clean" else budget_key(attack, eps_name(eps))


def budget_key(attack: str, budget: str) -> str:
    """The key of `attack` at an ε already named ('8/255')."""
    return f"{attack}@{budget}"


def parse_key(name: str) -> tuple[str, str | None]:
    """'pgd@8/255' -> ('pgd', '8/255'); 'clean' -> ('clean', None)."""
    attack, _, budget = name.partition("@")
    return attack, budget or None


def budgets(keys, attack: str | None = None) -> list[str]:
    """The ε names among `keys` (of `attack` alone, if given), smallest first."""
    found = {parse_key(k)[1] for k in keys
             if parse_key(k)[1] is not None and attack in (None, parse_key(k)[0])}
    return sorted(found, key=eps_value)


@dataclass(frozen=True)
class Result:
    """A result JSON as read back: the fields the report, the curve and the summary use."""

    path: Path
    data: dict

    @property
    def run(self) -> str:
        return self.data["run"]

    @property
    def seed(self) -> int:
        return self.data["seed"]

    @property
    def metrics(self) -> dict[str, float]:
        return self.data["metrics"]

    def metric(self, attack: str, eps: float | None = None) -> float:
        return self.metrics[key(attack, eps)]

    @property
    def sweep(self) -> dict[str, float]:
        """The metrics on the ε-sweep subset (all metrics where no sweep ran)."""
        return self.data.get("subsets", {}).get("sweep", self.metrics)

    @property
    def test_examples(self) -> int:
        return self.data["examples"]["test"]

    @property
    def warnings(self) -> list[str]:
        return self.data["sanity"]["warnings"]

    @property
    def data_source(self) -> str | None:
        return self.data.get("data_source")

    @property
    def corruptions(self) -> dict | None:
        """The corruption summary (source, paired, mean, per severity and corruption); None
        where the evaluation ran none."""
        return self.data.get("corruptions")

    @property
    def pretraining_set(self) -> str | None:
        """The data set the classifier's encoder was pretrained on, as the encoder's export
        recorded it; None for a classifier without a pretrained encoder and for results
        written before the field existed."""
        return (self.data.get("pretraining") or {}).get("dataset")


def write_result(path: str | os.PathLike, result: dict) -> None:
    write_text_atomically(Path(path), json.dumps(result, indent=2, default=str) + "\n")


def read_result(path: str | os.PathLike) -> Result:
    """A result JSON; anything else (empty, cut short, not a result) is one RobustSSLError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise damaged_result(path, f"not JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise damaged_result(path, "no metrics")
    return Result(path, data)


def damaged_result(path: Path, why: str) -> RobustSSLError:
    return RobustSSLError(f"result file '{path}' is damaged or not a result ({why}): delete "
                          "it, and the next make evaluates that cell again")


@dataclass
class PerImage:
    """Per test image (`test_index`: its index in the test split) and setting: whether the
    setting ran on it and whether it stayed right. Corruption settings are over the corrupted
    images, `corruption_index` (see `index_of`)."""

    test_index: np.ndarray
    ran: dict[str, np.ndarray]
    right: dict[str, np.ndarray]
    corruption_index: np.ndarray | None = None

    def index_of(self, setting: str) -> np.ndarray:
        """The indices of the images a setting's arrays are over."""
        if setting.startswith(CORRUPTION) and self.corruption_index is not None:
            return self.corruption_index
        return self.test_index


def records_path(result_path: str | os.PathLike) -> Path:
    path = Path(result_path)
    return path.with_name(path.stem + ".records.npz")


def packed(records: dict, prefix: str) -> dict[str, np.ndarray]:
    """One set's records as arrays: sorted keys, one bit per image and setting."""
    names = sorted(records)
    ran = np.stack([np.asarray(records[name][0], dtype=bool) for name in names])
    right = np.stack([np.asarray(records[name][1], dtype=bool) for name in names])
    return {f"{prefix}keys": np.array(names), f"{prefix}size": np.int64(ran.shape[1]),
            f"{prefix}ran": np.packbits(ran, axis=1), f"{prefix}right": np.packbits(right, axis=1)}


def write_records(result_path: str | os.PathLike, records: dict, test_index,
                  corruptions: dict | None = None, corruption_index=None) -> Path:
    """`records`: metric key -> (ran, right), boolean arrays over the test split;
    `corruptions` the same over the corrupted images, `corruption_index`."""
    arrays = packed(records, "") | {"test_index": np.asarray(test_index, dtype=np.int64)}
    if corruptions:
        arrays |= packed(corruptions, "corruption_") | {
            "corruption_index": np.asarray(corruption_index, dtype=np.int64)}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return replace_atomically(records_path(result_path),
                              lambda partial: partial.write_bytes(buffer.getvalue()),
                              buffer.getbuffer().nbytes)


def unpacked(stored, prefix: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    size, names = int(stored[f"{prefix}size"]), [str(name) for name in stored[f"{prefix}keys"]]
    ran = np.unpackbits(stored[f"{prefix}ran"], axis=1, count=size).astype(bool)
    right = np.unpackbits(stored[f"{prefix}right"], axis=1, count=size).astype(bool)
    return dict(zip(names, ran)), dict(zip(names, right))


def read_records(result_path: str | os.PathLike) -> PerImage | None:
    """The result's per-image records; None where it has none (made before they existed)."""
    path = records_path(result_path)
    if not path.is_file():
        return None
    try:
        with np.load(path) as stored:
            ran, right = unpacked(stored, "")
            index = None
            if "corruption_keys" in stored:
                more = unpacked(stored, "corruption_")
                ran, right, index = ran | more[0], right | more[1], stored["corruption_index"]
            return PerImage(stored["test_index"], ran, right, index)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise RobustSSLError(
            f"records file '{path}' is damaged or not this suite's ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'empty'}): delete it and its "
            f"result '{Path(result_path).name}', and the next make evaluates that cell again"
        ) from None
