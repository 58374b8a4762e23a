"""The YAML configs under experiments/ are the very files users and make run: they must work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytorch_lightning.cli import LightningCLI

from tests.conftest import write_cifar_files, write_image_folder

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "experiments").glob("*/*.yaml"))


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "robust_ssl", *args], cwd=cwd,
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_config_validates(config, tmp_path, capsys):
    """Every key and value type of every config is accepted by the CLI's parser."""
    subcommand = "test" if config.stem == "evaluate" else "fit"
    with pytest.raises(SystemExit) as exit_info:
        LightningCLI(args=[subcommand, "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    assert "class_path" in capsys.readouterr().out


def test_smoke_pretrain_finetune_evaluate_chain_runs_from_its_configs(tmp_path):
    write_cifar_files(tmp_path / "data", "cifar100", train=100, test=20)
    write_image_folder(tmp_path / "data/cifar10", {"train": 10, "test": 4})
    configs = ROOT / "experiments/smoke"
    pretrain = run_cli("fit", "--config", str(configs / "simclr.yaml"), cwd=tmp_path)
    assert pretrain.returncode == 0, pretrain.stderr[-2000:]
    assert (tmp_path / "results/smoke/simclr/encoder.pt").is_file()
    assert "kNN accuracy (cifar10, k=5) after epoch 2" in pretrain.stderr + pretrain.stdout
    finetune = run_cli("fit", "--config", str(configs / "finetune.yaml"), cwd=tmp_path)
    assert finetune.returncode == 0, finetune.stderr[-2000:]
    assert (tmp_path / "results/smoke/finetune/checkpoints/last.ckpt").is_file()
    evaluate = run_cli("test", "--config", str(configs / "evaluate.yaml"), cwd=tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr[-2000:]
    result = json.loads((tmp_path / "results/smoke/evaluation.json").read_text())
    assert result["examples"]["test"] == 12 and "pgd@8/255" in result["metrics"]
