"""The container recipes build the environment the Makefile installs, and SLURM cells can be
started through a container's Python (SLURM_PYTHON). No container runtime is installed here:
the real-cluster test in test_slurm.py runs a cell through a stand-in for `apptainer exec`."""

import os
import re
from pathlib import Path

from robust_ssl.runs import slurm
from robust_ssl.runs.slurm import SlurmOptions

ROOT = Path(__file__).resolve().parents[1]
CONTAINERS = ROOT / "containers"
IN_CONTAINER = "apptainer exec --nv robust-ssl.sif python"


def makefile_pins() -> set[str]:
    line = next(l for l in (ROOT / "Makefile").read_text().splitlines()
                if l.startswith("TORCH_PINS :="))
    return set(line.split(":=")[1].split())


def test_both_recipes_install_the_makefiles_torch_and_copy_files_that_exist():
    for recipe in ("Dockerfile", "robust-ssl.def"):
        text = (CONTAINERS / recipe).read_text()
        assert makefile_pins() <= set(re.findall(r"torch\S*==\S+", text)), recipe
        assert "pip install --no-cache-dir -e" in text
    copied = re.findall(r"^COPY (.+) \S+$", (CONTAINERS / "Dockerfile").read_text(), re.M)
    files = [line.split()[0] for line in (CONTAINERS / "robust-ssl.def").read_text()
             .split("%files")[1].split("%post")[0].strip().splitlines()]
    for name in [n for line in copied for n in line.split()] + files:
        assert (ROOT / name).exists(), name


def test_a_jobs_python_is_the_one_slurm_python_names(tmp_path, monkeypatch):
    # submitit's executor wants an srun on PATH even to write a script: a stand-in that
    # nothing calls, so this unit test runs without a cluster (make test on a laptop)
    stand_in = tmp_path / "bin" / "srun"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\nexit 1\n")
    stand_in.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stand_in.parent}:{os.environ['PATH']}")
    scheduler = slurm.Scheduler(tmp_path, SlurmOptions(python=IN_CONTAINER))
    script = scheduler.executor._make_submission_file_text(
        scheduler.executor._submitit_command_str, "uid")
    assert f"{IN_CONTAINER} -u -m submitit.core._submit" in script
    assert "python: apptainer exec" in SlurmOptions(python=IN_CONTAINER).describe()
    default = slurm.Scheduler(tmp_path, SlurmOptions()).executor._submitit_command_str
    assert "apptainer" not in default and "submitit.core._submit" in default
