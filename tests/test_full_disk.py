"""A full disk, for real: a cell whose run directory is on a small tmpfs the test mounts (root
only) runs out of space while saving a checkpoint. It stops with one error that names the
file and the space it needed, leaves every file written before intact and no partial file,
and finishes on the next run once there is space."""

import json
import os
import subprocess

import pytest
import yaml

from robust_ssl.runs import run
from tests.test_run import cell_args


@pytest.fixture
def small_file_system(tmp_path):
    """A 256 MiB tmpfs (a smoke ResNet-18 cell keeps two 85 MiB checkpoints), most of it
    taken by a filler file the test can delete."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_the_cell_naming_the_space_and_it_finishes_once_freed(
        small_file_system, image_folder, capsys):
    data_dir, _ = image_folder
    filler = small_file_system / "filler"
    with open(filler, "wb") as f:  # leaves 40 MiB: less than one ResNet-18 checkpoint
        os.posix_fallocate(f.fileno(), 0, 216 * 2**20)
    cell = small_file_system / "results" / "supervised-clean-s0"
    args = cell_args(data_dir, cell, "trainer.max_epochs=1")
    with pytest.raises(SystemExit) as stopped:
        run.main(args)
    assert stopped.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0 and "no space left to write" in message, message
    assert str(cell) in message and "MiB needed" in message and "MiB free" in message
    assert not list(small_file_system.rglob("*.partial"))
    # what was written before the disk filled is whole: the config and its record
    assert yaml.safe_load((cell / "config.yaml").read_text())["trainer"]["max_epochs"] == 1
    assert json.loads((cell / "config.fingerprint.json").read_text())
    assert not (cell / run.FINAL_CLASSIFIER).exists()

    filler.unlink()
    run.main(args)
    assert (cell / run.FINAL_CLASSIFIER).is_file() and (cell / "config.outputs.json").is_file()
    assert run.finished(args)
