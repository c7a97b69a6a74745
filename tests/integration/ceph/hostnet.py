"""A second machine on this one, for the multi-host Ceph tests: a bridge the tests make (the
cluster's monitor and OSDs bind to its address), and a network namespace on it with its own
address and a real sshd. `storage add-host` then runs unchanged: ssh to the namespace's
address, where Ceph's tools run in the namespace's network (same files and programs as here:
only the network differs, which is what the cluster sees of a machine).

Everything is named with one random label, and `leaks()` finds anything left with it.
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from emulator.networks import ipam

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


class HostNet:
    """The bridge (made at once) and, on demand, the second host (namespace + sshd)."""

    def __init__(self, workdir: Path):
        self.label = "pcc" + secrets.token_hex(3)
        self.bridge = self.label
        self.dir = workdir
        taken = ipam.host_taken_cidrs(libvirt_uri=None)
        pool = secrets.choice([str(n) for n in ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=12)])
        net = ipaddress.ip_network(ipam.allocate_vpc_cidr(taken, pool=pool, prefix=24))
        self.prefix = net.prefixlen
        self.host_ip, self.peer_ip = str(net.network_address + 1), str(net.network_address + 2)
        self.ns = f"{self.label}-h2"
        self.veth = f"{self.label}v"
        self.sshd: subprocess.Popen | None = None
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.host_ip}/{self.prefix}", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    # -- the second host -----------------------------------------------------------------
    def start_peer(self) -> dict:
        """Namespace with PEER_IP, an sshd in it that lets a fresh key in as root; returns
        the ssh config file, the target and the key's path."""
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        sh("ip", "link", "set", self.veth, "master", self.bridge, "up")
        sh("ip", "-n", self.ns, "addr", "add", f"{self.peer_ip}/{self.prefix}", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        d = self.dir / "peer-ssh"
        d.mkdir(mode=0o700)
        for name in ("host_key", "client_key"):
            sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.label}-{name}", "-f", str(d / name))
        (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
        (d / "authorized_keys").chmod(0o600)
        host_pub = (d / "host_key.pub").read_text().split()
        (d / "known_hosts").write_text(f"{self.peer_ip} {host_pub[0]} {host_pub[1]}\n")
        (d / "sshd_config").write_text(f"""ListenAddress {self.peer_ip}
Port 22
HostKey {d}/host_key
AuthorizedKeysFile {d}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile {d}/sshd.pid
LogLevel VERBOSE
""")
        (d / "ssh_config").write_text(f"""Host {self.peer_ip}
  User root
  IdentityFile {d}/client_key
  IdentitiesOnly yes
  UserKnownHostsFile {d}/known_hosts
  StrictHostKeyChecking yes
""")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        log = open(d / "sshd.log", "ab")
        self.sshd = subprocess.Popen(["ip", "netns", "exec", self.ns, SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection((self.peer_ip, 22), timeout=1):
                    break
            except OSError:
                if self.sshd.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd in {self.ns} did not start: {(d / 'sshd.log').read_text()[-1500:]}")
                time.sleep(0.1)
        return {"config": str(d / "ssh_config"), "target": f"root@{self.peer_ip}", "identity": str(d / "client_key")}

    def peer_pids(self) -> list[int]:
        """Processes whose network is the second host's (its sshd, its OSDs)."""
        out = sh("ip", "netns", "pids", self.ns, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit() and _alive(int(p))]

    def stop_peer(self) -> None:
        for _ in range(3):
            pids = self.peer_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)
        if self.sshd is not None:
            try:
                self.sshd.wait(5)
            except subprocess.TimeoutExpired:
                pass
        sh("ip", "link", "del", self.veth, check=False)
        sh("ip", "netns", "del", self.ns, check=False)

    # -- all of it -------------------------------------------------------------------------
    def close(self) -> None:
        if self.ns in sh("ip", "netns", "list", check=False).stdout.split():
            self.stop_peer()
        sh("ip", "link", "del", self.bridge, check=False)

    def leaks(self) -> list[str]:
        found = [f"netns {n}" for n in sh("ip", "netns", "list", check=False).stdout.split() if self.label in n]
        found += [f"link {line.split()[1].rstrip(':')}" for line in sh("ip", "-o", "link", check=False).stdout.splitlines()
                  if self.label in line]
        return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
