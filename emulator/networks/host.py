"""Running the host's network tools (`ip`, `nft`, `iptables`, `sysctl` files) safely.

Every call is an argv list (never a shell string) and every failure becomes an
`emulator.errors` exception carrying the tool's own message, so the network library
never lets a `CalledProcessError` escape to a service. Reads use `ip -j` (JSON) so no
output is parsed with regular expressions.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, EngineError, InvalidParameter

IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")  # IFNAMSIZ is 16 with the NUL


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not path:
        raise BackendUnavailable(f"`{name}` is not installed", hint="run `make engines` (scripts/engines.sh) as root")
    return path


def run(argv: list[str], *, input: str | None = None, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    """Runs one host tool; a non-zero exit is an EngineError naming the tool and its message."""
    argv = [tool(argv[0]), *argv[1:]]
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EngineError(f"{Path(argv[0]).name} did not finish within {timeout}s") from None
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise EngineError(f"{Path(argv[0]).name} {' '.join(argv[1:3])}: {' '.join(msg)[-600:]}")
    return proc


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    argv = ["ip", "-j", *(["-n", netns] if netns else []), *args]
    out = run(argv).stdout.strip()
    return json.loads(out) if out else []


def ifname(value: Any, what: str = "interface name") -> str:
    if not isinstance(value, str) or not IFNAME.fullmatch(value):
        raise InvalidParameter(f"invalid {what} {str(value)[:40]!r}: 1-15 letters, digits, '_', '.', '-'")
    return value


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", ifname(name)).exists()


def links() -> list[dict[str, Any]]:
    return ip_json("-d", "link", "show")


def write_sysctl(path: str, value: str) -> None:
    """Writes one /proc/sys entry (e.g. 'net/ipv4/conf/pcb-x/route_localnet')."""
    full = Path("/proc/sys") / path
    if ".." in Path(path).parts:
        raise InvalidParameter(f"invalid sysctl path {path!r}")
    try:
        if full.read_text().strip() != value:
            full.write_text(value)
    except OSError as e:
        raise EngineError(f"cannot set {path.replace('/', '.')}={value}: {e.strerror}") from None


def read_sysctl(path: str) -> str | None:
    try:
        return (Path("/proc/sys") / path).read_text().strip()
    except OSError:
        return None


def is_root() -> bool:
    return os.geteuid() == 0
