import os
import subprocess
import sys
from pathlib import Path

import pytest

from robust_ssl import cli
from robust_ssl.errors import RobustSSLError
from robust_ssl.plumbing import lightning_cli

ROOT = Path(__file__).resolve().parents[1]


def test_console_script_help():
    script = Path(sys.executable).parent / "robust-ssl"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "fit" in result.stdout and "--config" in result.stdout


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "robust_ssl", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env)


FIT = ["fit", "--model", "tests.toy.ToyClassifier",
       "--data", "robust_ssl.data.modules.LabeledDataModule", "--trainer.fast_dev_run", "true",
       "--trainer.accelerator", "cpu"]


def test_a_run_warns_neither_of_its_plugins_nor_of_the_flags_it_was_started_with(
        image_folder, tmp_path, monkeypatch, recwarn, caplog):
    # a cell forked from the grid inherits the grid's sys.argv; run.py hands the CLI its args
    monkeypatch.setattr(sys, "argv", ["robust-ssl", "table1", "--profile", "quick"])
    data_dir, _ = image_folder
    lightning_cli.run_cli(["fit", "--model", "tests.toy.ToyClassifier", "--data",
                           "robust_ssl.data.modules.LabeledDataModule", "--data.data_dir",
                           str(data_dir), "--trainer.max_epochs", "1",
                           "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
                           "--trainer.accelerator", "cpu", "--trainer.default_root_dir",
                           str(tmp_path)])
    assert (tmp_path / "lightning_logs/version_0/config.yaml").is_file()  # the config was saved
    messages = [str(w.message) for w in recwarn]
    assert not [m for m in messages if "Unable to serialize" in m or "args parameter" in m]
    # nor the two upstream lines no user can act on (plumbing/upstream_noise.py)
    assert not [m for m in messages if "LeafSpec" in m]
    assert "litlogger" not in caplog.text
    assert sys.argv == ["robust-ssl", "table1", "--profile", "quick"]  # given back


def test_missing_data_is_one_line_and_exit_2(tmp_path):
    result = run_cli(*FIT, "--data.data_dir", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "robust-ssl: error:" in line]
    assert len(error_lines) == 1 and "CIFAR-10 not found" in error_lines[0]
    assert not (tmp_path / "absent").exists()  # nothing created on the way to failing


def test_impossible_fraction_exits_2(tmp_path):
    result = run_cli(*FIT, "--data.fraction", "1.5", "--data.data_dir", str(tmp_path))
    assert result.returncode == 2
    assert "fraction=1.5 is outside (0, 1]" in result.stderr


def test_main_turns_user_errors_into_exit_status_2(monkeypatch, capsys):
    def failing_cli(**kwargs):
        try:
            raise RobustSSLError("bad input, fix it like so")
        except RobustSSLError as inner:  # wrapped, as jsonargparse wraps it
            raise ValueError("Does not validate against any of the Union subtypes") from inner

    monkeypatch.setattr(lightning_cli, "SuiteCLI", failing_cli)
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "robust-ssl: error: bad input, fix it like so\n"


def test_a_file_that_is_no_classifier_is_one_line_and_exit_2(image_folder, tmp_path):
    data_dir, _ = image_folder
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    result = run_cli("test", "--config", str(ROOT / "experiments/base/evaluate.yaml"),
                     "--config", str(ROOT / "experiments/smoke/evaluate.yaml"),
                     "--model.checkpoint", str(empty), "--model.output", str(tmp_path / "o.json"),
                     "--data.data_dir", str(data_dir))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "robust-ssl: error: cannot read classifier checkpoint" in result.stderr
    assert not (tmp_path / "o.json").exists()
