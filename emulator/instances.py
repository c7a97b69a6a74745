"""An instance's record as the services keep it, and the bookkeeping around records: one
lock per instance while it is in use, and the host ports forwards are given."""
from __future__ import annotations

import json
import random
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from .compute.driver import PortForward
from .compute.engines import ENGINE_NAMES
from .compute.types import INSTANCE_TYPES
from .errors import AlreadyExists, InvalidParameter, QuotaExceeded, Throttled

STATES = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
KINDS = ("container", "vm")
HOST_PORT_RANGE = (20000, 29999)  # Config.forward_ports's default
MAX_FORWARDS = 32  # per instance: explicit ports and security group rules together


@dataclass
class Instance:
    id: str
    owner: str
    name: str
    kind: str
    image: str
    type: str
    state: str
    state_reason: str
    engine_id: str | None
    ports: list[dict]
    user_data: str
    tags: dict[str, str]
    private_ip: str | None
    key_name: str | None
    details: dict
    created_at: float
    updated_at: float
    terminated_at: float | None

    @classmethod
    def from_row(cls, row) -> "Instance":
        d = dict(row)
        for k, default in (("ports", "[]"), ("tags", "{}"), ("details", "{}")):
            d[k] = json.loads(d[k] or default)
        return cls(**d)

    def to_dict(self) -> dict:
        itype = INSTANCE_TYPES.get(self.type)
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "image": self.image,
            "type": self.type,
            "vcpus": itype.vcpus if itype else None,
            "memory_mib": itype.memory_mib if itype else None,
            "state": self.state,
            "state_reason": self.state_reason,
            "owner": self.owner,
            "ports": self.ports,
            "private_ip": self.private_ip,
            "tags": self.tags,
            "key_name": self.key_name,
            "engine": {"name": ENGINE_NAMES.get(self.kind), "id": self.engine_id},
            "created_at": iso(self.created_at),
            "launched_at": iso(self.details.get("launched_at")),
            "terminated_at": iso(self.terminated_at),
            "has_user_data": bool(self.user_data),
            **({"hypervisor": {"mode": self.details.get("hypervisor"), "reason": self.details.get("hypervisor_reason")},
                "boot": self.details.get("boot") or {"phase": None, "phases": []}}
               if self.kind == "vm" else {}),
        }


def iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


class KeyedLocks:
    """One lock per key (an instance id, a client token), kept only while someone holds or
    waits for it: a registry of every key ever locked would grow for the server's life."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}  # key -> (lock, [users])

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if users[0] == 0:
                    del self._locks[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._locks)


class Slots:
    """At most `per_key` holders per key (an account) and `total` in all. One more is refused
    at once, not queued: a waiting exec would hold a server thread as surely as a running one.
    Keys go when their last holder leaves, like KeyedLocks."""

    def __init__(self, per_key: int, total: int, what: str = "execs"):
        self.per_key, self.total, self.what = per_key, total, what
        self._guard = threading.Lock()
        self._used: dict[str, int] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            mine, everyone = self._used.get(key, 0), sum(self._used.values())
            if mine >= self.per_key:
                raise Throttled(f"{mine} {self.what} of this account are already running (at most {self.per_key} "
                                "at once); try again when one has finished", code="RequestLimitExceeded")
            if everyone >= self.total:
                raise Throttled(f"{everyone} {self.what} are already running on this server (at most {self.total} "
                                "at once); try again shortly", code="RequestLimitExceeded")
            self._used[key] = mine + 1
        try:
            yield
        finally:
            with self._guard:
                self._used[key] -= 1
                if not self._used[key]:
                    del self._used[key]

    def __len__(self) -> int:
        with self._guard:
            return len(self._used)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def allocate_ports(c, ports: tuple[PortForward, ...],
                   port_range: tuple[int, int] = HOST_PORT_RANGE) -> tuple[PortForward, ...]:
    """Fix a host port for every forward now (inside the caller's transaction `c`), so it
    stays the same across stop/start: an asked-for port must be free and inside `port_range`
    (forwards become kernel rules that bind nothing, so they could shadow a host service
    outside it unnoticed), the others are drawn from that range."""
    lo, hi = port_range
    for p in ports:
        if p.host is not None and not lo <= p.host <= hi:
            raise InvalidParameter(f"host port {p.host} is outside this cloud's forward range {lo}-{hi}; "
                                   "pick one inside it or omit it", code="InvalidParameterValue")
    used = set()
    for row in c.execute("SELECT ports FROM instances WHERE state!='terminated'"):
        used.update(p.get("host") for p in json.loads(row[0]))
    out = []
    for p in ports:
        if p.host is not None:
            if p.host in used or not port_free(p.host):
                raise AlreadyExists(f"host port {p.host} is already in use; pick another or omit it", code="PortInUse")
            used.add(p.host)
            out.append(p)
            continue
        start = random.randint(lo, hi)
        for i in range(hi - lo + 1):
            cand = lo + (start - lo + i) % (hi - lo + 1)
            if cand not in used and port_free(cand):
                used.add(cand)
                out.append(PortForward(p.guest, cand, p.protocol))
                break
        else:
            raise QuotaExceeded("no free host port left for a forward")
    return tuple(out)
