"""Inputs that are not ours: every loader of a user's file (encoder, classifier checkpoint,
state_dict, TorchScript, result JSON, per-image records, fingerprint record, SLURM YAML) meets
empty, truncated, wrong-type and wrong-shape files and answers each with one clear error that
names the file (a RobustSSLError: the CLI prints it as one line and exits 2), never a
traceback, and never runs code from a pickle."""

import io
import json
import pickle

import numpy as np
import pytest
import torch

from robust_ssl.errors import RobustSSLError
from robust_ssl.evaluation import external
from robust_ssl.evaluation.classifier import load_classifier
from robust_ssl.evaluation.result import read_records, read_result, records_path
from robust_ssl.models.backbone import Encoder
from robust_ssl.models.export import load_encoder
from robust_ssl.models.layouts import read_foreign
from robust_ssl.runs.rundir import claim
from robust_ssl.runs.slurm import SlurmOptions


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


class Payload:
    """A pickled object whose loading would run code: weights_only refuses it."""

    def __reduce__(self):
        return (print, ("code from a pickle ran",))


VALID_TORCH = torch_bytes({"state_dict": {"conv1.weight": torch.zeros(64, 3, 3, 3)}})
TORCH_FILES = {
    "empty": b"",
    "truncated": VALID_TORCH[: len(VALID_TORCH) // 2],
    "not torch": b"{\"a\": 1}",
    "wrong type": torch_bytes(["a", "list"]),
    "wrong shape": torch_bytes({"state_dict": {"conv1.weight": torch.zeros(3),
                                               "classifier.weight": torch.zeros(3)},
                                "hyper_parameters": {"num_classes": 10}}),
    "code": pickle.dumps(Payload()),
}
JSON_FILES = {"empty": b"", "truncated": b'{"metrics": {"cle', "wrong type": b"[1, 2]",
              "wrong shape": b'{"metrics": 3}'}
VALID_NPZ = io.BytesIO()
np.savez(VALID_NPZ, test_index=np.arange(4))
NPZ_FILES = {"empty": b"", "truncated": VALID_NPZ.getvalue()[:40], "wrong type": b"[1, 2]",
             "wrong shape": VALID_NPZ.getvalue()}
YAML_FILES = {"truncated": b"partition: [gpu", "wrong type": b"- a\n- b\n",
              "wrong shape": b"partition: {a: 1}\n"}


def load_classifier_file(path):
    load_classifier(str(path))


def load_state_dict_file(path):
    external.load_weights(external.torchvision_classifier(10), external.read_state_dict(path), path)


TORCH_LOADERS = {
    "encoder (fine-tuning's encoder_path)": lambda p: load_encoder(Encoder("resnet18", "cifar"), p),
    "encoder of another codebase (import)": read_foreign,
    "classifier checkpoint (evaluation)": load_classifier_file,
    "state_dict (evaluate-model)": load_state_dict_file,
    "TorchScript (evaluate-model --torchscript)": external.torchscript_model,
}


def one_clear_error(load, path, capsys):
    with pytest.raises(RobustSSLError) as raised:
        load(path)
    message = str(raised.value)
    assert "\n" not in message and path.name in message, message
    assert "code from a pickle ran" not in capsys.readouterr().out


@pytest.mark.parametrize("kind", TORCH_FILES)
@pytest.mark.parametrize("loader", TORCH_LOADERS)
def test_torch_files(loader, kind, tmp_path, capsys):
    if kind == "code" and loader.startswith("TorchScript"):
        pytest.skip("TorchScript runs code by design: only on its explicit option")
    path = tmp_path / "file.pt"
    path.write_bytes(TORCH_FILES[kind])
    one_clear_error(TORCH_LOADERS[loader], path, capsys)


@pytest.mark.parametrize("kind", JSON_FILES)
def test_result_files(kind, tmp_path, capsys):
    path = tmp_path / "cell.json"
    path.write_bytes(JSON_FILES[kind])
    one_clear_error(read_result, path, capsys)


@pytest.mark.parametrize("kind", NPZ_FILES)
def test_records_files(kind, tmp_path, capsys):
    result = tmp_path / "cell.json"
    records_path(result).write_bytes(NPZ_FILES[kind])
    one_clear_error(lambda _: read_records(result), records_path(result), capsys)


@pytest.mark.parametrize("kind", ["empty", "truncated", "wrong type"])
def test_fingerprint_records(kind, tmp_path, capsys):
    """A damaged record vouches for nothing: beside results it stops the stage (RESTART=1
    redoes it); alone it is written again."""
    cell = tmp_path / "cell"
    (cell / "checkpoints").mkdir(parents=True)
    record = cell / "config.fingerprint.json"
    record.write_bytes(JSON_FILES[kind])
    one_clear_error(lambda _: claim(cell, record.name, {"a": 1}, [cell / "checkpoints"],
                                    restart=False), record, capsys)
    with pytest.raises(RobustSSLError, match="config.fingerprint.json is damaged .*RESTART=1"):
        claim(cell, record.name, {"a": 1}, [cell / "checkpoints"], restart=False)
    assert claim(cell, record.name, {"a": 1}, [], restart=False) is False


@pytest.mark.parametrize("kind", YAML_FILES)
def test_slurm_yaml(kind, tmp_path, capsys):
    path = tmp_path / "slurm.yaml"
    path.write_bytes(YAML_FILES[kind])
    one_clear_error(SlurmOptions.from_yaml, path, capsys)
