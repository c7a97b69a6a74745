"""The SSH exec path (a VM's) against a real OpenSSH server on loopback, without booting a
VM: output capped per stream, a silent command and what it started killed at the timeout
(closing the channel alone would leave them running), the pid line never shown."""
from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from emulator.compute.libvirt.guest import ssh_run
from emulator.compute.sshkeys import generate_keypair

from .cloud import free_port

pytestmark = pytest.mark.integration

SSHD = "/usr/sbin/sshd"


@pytest.fixture
def sshd(tmp_path):
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: install openssh-server (the SSH exec path is tested against it)")
    private, public = generate_keypair("limits-test")
    key = tmp_path / "id_ed25519"
    key.write_text(private)
    key.chmod(0o600)
    (tmp_path / "authorized_keys").write_text(public + "\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host_key")], check=True)
    port = free_port()
    config = tmp_path / "sshd_config"
    config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp_path / 'host_key'}\n"
                      f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
                      f"PasswordAuthentication no\nStrictModes no\nUsePAM no\nPidFile {tmp_path / 'sshd.pid'}\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            import socket
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(4).startswith(b"SSH-"):
                    break
        except OSError:
            time.sleep(0.1)
    yield port, key
    proc.terminate()
    proc.wait(timeout=10)


def test_ssh_exec_output_is_capped_per_stream(sshd):
    port, key = sshd
    res = ssh_run("127.0.0.1", "root", key, ["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' o; echo err >&2"],
                  30, max_output=100_000, port=port)
    assert (res.exit_code, res.stdout, res.stderr) == (0, "o" * 100_000, "err\n")
    assert res.truncated and not res.timed_out
    ok = ssh_run("127.0.0.1", "root", key, ["echo", "fine"], 30, port=port)
    assert (ok.stdout, ok.truncated, ok.exit_code) == ("fine\n", False, 0), "the pid line is not output"


def test_ssh_exec_timeout_kills_the_command_and_its_children(sshd):
    port, key = sshd
    n = random.randint(30000, 90000)  # durations no other process on the host has
    marker = f"sleep {n}"
    res = ssh_run("127.0.0.1", "root", key, ["sh", "-c", f"echo started; sleep {n}1 & sleep {n}2; echo never"],
                  2, port=port)
    assert res.timed_out and res.exit_code == 124 and res.stdout == "started\n"
    for _ in range(50):
        left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
        if not left:
            break
        time.sleep(0.1)
    assert left == [], "the command is gone"
