import socket

import pytest

from robust_ssl.errors import RobustSSLError
from robust_ssl.plumbing.tracking import wandb_mode


def test_offline_by_default_and_from_the_environment(monkeypatch):
    monkeypatch.delenv("WANDB", raising=False)
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB", "off")
    assert wandb_mode() == "off"
    assert wandb_mode("offline") == "offline"  # an explicit choice wins over the environment


def test_online_without_a_reachable_server_fails_at_once(monkeypatch):
    def unreachable(address, timeout):
        raise OSError("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(RobustSSLError, match="cannot be reached.*WANDB=offline.*wandb sync"):
        wandb_mode("online")


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(RobustSSLError, match="WANDB='cloud'"):
        wandb_mode("cloud")
