"""A guest's SSH server that hangs up mid-request (the tiny image's dropbear does on an exec
request over ~9000 bytes) is an EngineError that says so, never paramiko's bare EOFError
escaping the driver as a 500."""
from __future__ import annotations

import paramiko
import pytest

from emulator.compute.libvirt import guest
from emulator.errors import EngineError


class Channel:
    def exec_command(self, command):
        raise EOFError()


class Transport:
    def open_session(self, timeout=None):
        return Channel()


class Client:
    closed = False

    def set_missing_host_key_policy(self, policy):
        pass

    def connect(self, *args, **kwargs):
        pass

    def get_transport(self):
        return Transport()

    def close(self):
        Client.closed = True


def test_a_hang_up_mid_request_is_an_engine_error(monkeypatch, tmp_path):
    monkeypatch.setattr(paramiko, "SSHClient", Client)
    monkeypatch.setattr(paramiko.Ed25519Key, "from_private_key_file", staticmethod(lambda path: None))
    with pytest.raises(EngineError) as e:
        guest.ssh_run("10.0.0.5", "root", tmp_path / "key", ["sh", "-c", "x" * 10000], 30)
    assert "closed the connection" in e.value.message and "10006 bytes" in e.value.message
    assert Client.closed
