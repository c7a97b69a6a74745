"""scripts/engines.sh --check plans and changes nothing; stubs stand in for dpkg, apt and
the daemons (the real thing is proven on a minimal Debian by scripts/check-clean-machine.sh)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _stub(bin_dir: Path, name: str, body: str) -> None:
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


def _check(tmp_path: Path, installed: list[str], *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (tmp_path / "installed").write_text("\n".join(installed) + "\n")
    # dpkg-query -W -f=... PACKAGE: "install ok installed" for the listed packages only
    _stub(bin_dir, "dpkg-query", f'eval last=\\${{$#}}; grep -qx "$last" {tmp_path}/installed '
                                 '&& printf "install ok installed"')
    for tool in ("apt-get", "chgrp", "chmod", "setsid", "dockerd", "virtlogd", "libvirtd"):
        _stub(bin_dir, tool, f'echo "{tool} $*" >> {calls}; exit 0')
    for tool in ("docker", "virsh", "pgrep"):
        _stub(bin_dir, tool, "exit 1")  # nothing running
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / "engines.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=60)
    return proc, calls


def test_check_lists_what_is_missing_and_changes_nothing(tmp_path):
    everything_but_a_compiler = ["docker-ce", "iptables", "nftables", "qemu-system-x86", "qemu-utils", "libvirt-daemon-system",
                                 "libvirt-clients", "dnsmasq-base", "python3", "python3-venv", "python3-dev",
                                 "pkg-config", "libvirt-dev", "make", "ca-certificates", "busybox-static",
                                 "genisoimage", "debootstrap", "kmod", "cpio", "e2fsprogs", "iproute2",
                                 "openssh-client", "curl", "procps", "chromium"]
    proc, calls = _check(tmp_path, everything_but_a_compiler, "--check")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "would install 1 packages: gcc" in proc.stdout  # docker-ce stands in for docker.io
    assert "dockerd virtlogd libvirtd" in proc.stdout
    assert not calls.exists(), f"--check ran {calls.read_text()}"


def test_usage_errors_exit_2(tmp_path):
    proc, _ = _check(tmp_path, [], "--frobnicate")
    assert proc.returncode == 2 and "usage:" in proc.stderr
