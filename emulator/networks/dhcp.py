"""DHCP for VMs: one dnsmasq per subnet, static reservations only (MAC -> address, hostname).

Why DHCP rather than a static network config in the NoCloud seed: cloud-init's Ec2
datasource (listed before NoCloud in `debian-12`) brings the NIC up with an *ephemeral DHCP
lease* to reach 169.254.169.254 and then renders DHCP for the primary interface, exactly
as on AWS; `tiny` already runs busybox `udhcpc`. A seed-only config would need both images
changed and would break the Ec2 path. With reservations only (no dynamic range), a VM gets
the address pocketcloud's IPAM chose for it and nothing else gets anything.

dnsmasq runs detached from the server (it daemonizes, the pid file and config live under a
directory the caller gives), so a server restart or crash leaves DHCP up. Its config file
name carries the hash of its content: an already running dnsmasq whose command line names
the wanted file is adopted as is; a dead one, or one running an older config, is
(re)started. Reservations change rarely (a VM launched or terminated), and a restart takes
milliseconds (clients retry), so there is no hosts-file reload path to get wrong.
dnsmasq reads its config and opens its log as root, then drops to its unprivileged user.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EngineError, InvalidParameter
from . import host, model
from .model import Subnet

HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Reservation:
    mac: str
    ip: str
    hostname: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", model.mac(self.mac))
        object.__setattr__(self, "ip", model.ipv4(self.ip))
        if not isinstance(self.hostname, str) or not HOSTNAME.fullmatch(self.hostname):
            raise InvalidParameter(f"invalid hostname {str(self.hostname)[:70]!r}: lowercase letters, digits, '-'")


def hostname_for(ip: str) -> str:
    """EC2's private DNS label: ip-10-0-1-5."""
    return "ip-" + model.ipv4(ip).replace(".", "-")


class Dhcp:
    """The DHCP server of one subnet."""

    def __init__(self, label: str, subnet: Subnet, state_dir: Path):
        self.label, self.subnet = model.label(label), subnet
        self.dir = Path(state_dir)
        self.pid_file = self.dir / f"{subnet.id}.pid"
        self.log_file = self.dir / f"{subnet.id}.log"

    def config(self, reservations: list[Reservation]) -> str:
        net = ipaddress.ip_network(self.subnet.cidr)
        lines = [f"# pocketcloud {self.label} {self.subnet.id}: static reservations only, no DNS",
                 f"interface={self.subnet.bridge}", "bind-dynamic", "except-interface=lo", "port=0",
                 f"dhcp-range={net.network_address},static,{net.netmask},infinite",
                 f"dhcp-option=option:router,{self.subnet.gateway}",
                 "dhcp-authoritative", "leasefile-ro",
                 f"pid-file={self.pid_file}", f"log-facility={self.log_file}", "log-dhcp"]
        seen: set[str] = set()
        for r in sorted(reservations, key=lambda r: ipaddress.IPv4Address(r.ip)):
            if ipaddress.IPv4Address(r.ip) not in net:
                raise InvalidParameter(f"reservation {r.ip} is not in {self.subnet.cidr}")
            if r.mac in seen or r.ip in seen:
                raise InvalidParameter(f"{r.mac} or {r.ip} is reserved twice")
            seen |= {r.mac, r.ip}
            lines.append(f"dhcp-host={r.mac},{r.ip},{r.hostname},infinite")
        return "\n".join(lines) + "\n"

    def _conf_path(self, text: str) -> Path:
        return self.dir / f"{self.subnet.id}.{hashlib.sha256(text.encode()).hexdigest()[:12]}.conf"

    def pid(self) -> int | None:
        """The running dnsmasq of this subnet (checked by its command line, not just the pid file)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        ours = any(a.startswith(f"--conf-file={self.dir / self.subnet.id}.".encode()) for a in cmd)
        return pid if cmd and cmd[0].endswith(b"dnsmasq") and ours else None

    def running_config(self) -> Path | None:
        pid = self.pid()
        if pid is None:
            return None
        for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
            if a.startswith(b"--conf-file="):
                return Path(a.split(b"=", 1)[1].decode())
        return None

    def ensure(self, reservations: list[Reservation]) -> dict[str, Any]:
        """Makes the subnet's dnsmasq serve exactly these reservations. Returns {pid, action} with
        action one of adopted (already right), started (was not running), restarted (config changed)."""
        text = self.config(reservations)
        path = self._conf_path(text)
        running = self.running_config()
        if running == path and path.exists():
            return {"pid": self.pid(), "action": "adopted"}
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        action = "restarted" if running else "started"
        self.stop(remove_files=False)
        proc = host.run(["dnsmasq", f"--conf-file={path}"], check=False)
        pid = self._wait_pid()
        if proc.returncode != 0 or pid is None:
            detail = proc.stderr.strip() or self._log_tail()
            raise EngineError(f"dnsmasq for {self.subnet.id} did not start: {detail[-400:]}")
        for old in self.dir.glob(f"{self.subnet.id}.*.conf"):
            if old != path:
                old.unlink(missing_ok=True)
        return {"pid": pid, "action": action}

    def _wait_pid(self, timeout: float = 3.0) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.pid()
            if pid:
                return pid
            time.sleep(0.02)
        return None

    def _log_tail(self, chars: int = 400) -> str:
        try:
            return self.log_file.read_text()[-chars:]
        except OSError:
            return ""

    def stop(self, remove_files: bool = True) -> bool:
        """Stops this subnet's dnsmasq (only if the pid is really ours); idempotent."""
        pid = self.pid()
        stopped = False
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and self.pid() == pid:
                    time.sleep(0.02)
                if self.pid() == pid:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            stopped = True
        if remove_files:
            for f in [self.pid_file, self.log_file, *self.dir.glob(f"{self.subnet.id}.*.conf")]:
                f.unlink(missing_ok=True)
        return stopped

    def leases_log(self, lines: int = 20) -> list[str]:
        """The last DHCP exchanges (for internals)."""
        return [ln for ln in self._log_tail(200 * lines).splitlines() if "DHCP" in ln][-lines:]


def running(state_dir: Path) -> dict[str, int]:
    """subnet id -> pid of every live dnsmasq started under state_dir (for leak checks and reaping)."""
    out = {}
    for pid_file in Path(state_dir).glob("subnet-*.pid"):
        sid = pid_file.stem
        try:
            pid = int(pid_file.read_text().strip())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if b"dnsmasq" in cmd and f"--conf-file={Path(state_dir) / sid}.".encode() in cmd:
            out[sid] = pid
    return out
