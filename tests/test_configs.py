"""The YAML configs under experiments/ are the very files users and make run: they must work."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytorch_lightning.cli import LightningCLI

from tests.conftest import write_cifar_files, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments").glob("*/*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_instantiates(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = LightningCLI(args=["--config", str(config)], run=False, subclass_mode_model=True,
                       subclass_mode_data=True)
    assert cli.model is not None and cli.datamodule is not None


def test_smoke_pretraining_runs_from_its_config(tmp_path):
    write_cifar_files(tmp_path / "data", "cifar100", train=100, test=20)
    write_image_folder(tmp_path / "data/cifar10", {"train": 6, "test": 2})
    result = subprocess.run(
        [sys.executable, "-m", "robust_ssl", "fit", "--config",
         str(ROOT / "experiments/smoke/simclr.yaml")],
        cwd=tmp_path, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "results/smoke/simclr/encoder.pt").is_file()
    assert (tmp_path / "results/smoke/simclr/checkpoints/last.ckpt").is_file()
    assert "kNN accuracy (cifar10, k=5) after epoch 2" in result.stderr + result.stdout
