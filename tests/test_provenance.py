"""What a result says produced it: the commit of the code the process loaded."""

import subprocess

from robust_ssl.plumbing import provenance
from robust_ssl.plumbing.provenance import git_commit
from robust_ssl.runs import launch


def test_the_commit_is_read_once_and_before_the_grid_forks_its_cells(monkeypatch):
    """A checkout that moves while a run (or a grid's forked cell) goes on must not relabel
    the result: the commit is read as the code loads and kept."""
    answers = iter(["aaaa\n", "bbbb-dirty\n"])  # the checkout, then the checkout moved
    real = subprocess.run

    def run(command, *args, **kwargs):
        if command[0] != "git":
            return real(command, *args, **kwargs)
        return subprocess.CompletedProcess(command, 0, stdout=next(answers))

    monkeypatch.setattr(provenance.subprocess, "run", run)
    git_commit.cache_clear()
    try:
        launch.warm_up(wandb=False)  # the grid's parent, before it forks
        assert git_commit.cache_info().currsize == 1  # read there, so the cells inherit it
        assert git_commit() == "aaaa" and git_commit() == "aaaa"  # the move is never read
    finally:
        git_commit.cache_clear()


def test_versions_name_every_package_a_result_depends_on():
    found = provenance.versions()
    assert set(found) == {"python", *provenance.PACKAGES}
    assert found["torch"] != "not installed" and found["robust-ssl"] != "not installed"
