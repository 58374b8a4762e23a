"""The cells' W&B logger starts its run without wandb's deprecation warning for `anonymous`,
which Lightning's own logger triggers (the control, so this test notices when either side
changes)."""

import subprocess
import sys

import pytest

START_A_RUN = """
import sys
from importlib import import_module
module, name = sys.argv[1].rsplit(".", 1)
logger = getattr(import_module(module), name)(project="p", save_dir=sys.argv[2], offline=True)
logger.experiment.log({"x": 1})
logger.experiment.finish()
"""


@pytest.mark.parametrize("logger, warns", [("robust_ssl.plumbing.wandb_logger.WandbLogger", False),
                                           ("pytorch_lightning.loggers.WandbLogger", True)])
def test_a_cells_wandb_run_starts_without_the_anonymous_warning(tmp_path, logger, warns):
    done = subprocess.run([sys.executable, "-c", START_A_RUN, logger, str(tmp_path)],
                          capture_output=True, text=True, timeout=120,
                          env={"WANDB_SILENT": "false", "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path), "WANDB_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert ("anonymous setting has no effect" in done.stderr) == warns
    assert list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
