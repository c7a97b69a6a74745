"""The durability lab's logic (`pocketcloud lab durability` drives it over the REST API): write
objects, kill one OSD, show the cluster degraded yet serving every object, bring the OSD back
and time the recovery. The result is a timeline of events plus the cluster's state sampled
every second or so (OSDs up, PG states, health) — what a chart of the lab is drawn from.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Callable, Protocol

from ...errors import BackendUnavailable, EngineError
from ..client import BackendClient

Progress = Callable[[str], None]


class ObjectIO(Protocol):
    bucket: str

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class EngineBucket:
    """A scratch bucket straight on the engine (with the engine's credentials)."""

    def __init__(self, client: BackendClient, bucket: str):
        self.client, self.bucket = client, bucket

    def _ok(self, status: int, body: bytes, what: str) -> None:
        if status >= 300:
            raise EngineError(f"{what}: HTTP {status} {body[:200]!r}")

    def create(self) -> "EngineBucket":
        status, _, body = self.client.simple("PUT", self.bucket)
        self._ok(status, body, f"create bucket {self.bucket}")
        return self

    def put(self, key: str, data: bytes) -> None:
        status, _, body = self.client.simple("PUT", self.bucket, key, body=data)
        self._ok(status, body, f"PUT {key}")

    def get(self, key: str) -> bytes:
        status, _, body = self.client.simple("GET", self.bucket, key)
        self._ok(status, body, f"GET {key}")
        return body

    def delete(self, key: str) -> None:
        status, _, body = self.client.simple("DELETE", self.bucket, key)
        self._ok(status, body, f"DELETE {key}")

    def remove(self) -> None:
        self.client.simple("DELETE", self.bucket)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def durability(cluster, io: ObjectIO, *, objects: int = 50, size: int = 64 * 1024, osd: str | None = None,
               timeout: float = 240.0, restart: Callable[[str], None] | None = None,
               progress: Progress = print, killable: Callable[[str], bool] = lambda name: True) -> dict:
    """Run the lab on `cluster` (a CephCluster, or anything with its status/placement/hold/
    kill/release: the CLI's view over REST) through `io`; returns the timeline.

    The killed OSD is held down (the supervisor leaves it alone) until every object has been
    read back; then it is released, so the supervisor restarts it — or `restart(name)` does,
    where no supervisor runs. `killable(name)` says which OSDs can be killed from here (the
    OSDs of added machines cannot).
    """
    if objects < 1 or size < 1:
        raise ValueError("objects and size must be positive")
    t0 = time.monotonic()
    events: list[dict] = []
    samples: list[dict] = []

    def now() -> float:
        return round(time.monotonic() - t0, 2)

    def mark(what: str, **detail) -> None:
        events.append({"t": now(), "event": what, **detail})
        progress(f"[{now():6.1f} s] {what}")

    def sample() -> dict:
        try:
            s = cluster.status(fresh=True)
        except BackendUnavailable as exc:
            s = {"health": "UNKNOWN", "health_reason": str(exc), "serving": "unavailable",
                 "osds": {"up": None, "total": None}, "pgs": {"states": {}}}
        samples.append({"t": now(), "osds_up": s["osds"]["up"], "osds_total": s["osds"]["total"],
                        "serving": s["serving"], "health": s["health"], "pgs": dict(s["pgs"]["states"])})
        return s

    def wait_for(cond: Callable[[dict], bool], what: str) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            s = sample()
            if cond(s):
                return s
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"durability lab: {what} did not happen within {timeout:.0f} s "
                                         f"(last: {s['health']} {s['health_reason']})")
            time.sleep(0.5)

    digests: dict[str, str] = {}
    for i in range(objects):
        key = f"durability/obj-{i:05d}"
        data = os.urandom(size)
        io.put(key, data)
        digests[key] = _digest(data)
    mark(f"wrote {objects} objects of {size} bytes", objects=objects, bytes=objects * size)
    before = wait_for(lambda s: s["serving"] == "ok", "a clean cluster before the failure")
    first = next(iter(digests))
    where = cluster.placement(io.bucket, first)
    # the primary of the first object's PG, unless only another replica's OSD can be killed from here
    replicas = [f"osd.{i}" for i in where["acting"]]
    victim = osd or next((name for name in replicas if killable(name)), f"osd.{where['primary']}")
    mark(f"{first} lives in PG {where['pg']} on OSDs {where['acting']} (primary osd.{where['primary']})",
         placement=where, health=before["health"])
    cluster.hold(victim)
    try:
        pid = cluster.kill(victim)
        t_kill = time.monotonic()
        mark(f"killed {victim} (pid {pid}) with SIGKILL and held it down", osd=victim, pid=pid)
        down = wait_for(lambda s: s["osds"]["up"] is not None and s["osds"]["up"] < s["osds"]["total"],
                        "the cluster noticing the dead OSD")
        t_detect = time.monotonic()
        mark(f"cluster sees {victim} down: {down['health']} ({down['health_reason']}); serving: {down['serving']}",
             health=down["health"], serving=down["serving"], osds_up=down["osds"]["up"])
        intact, sampled = 0, time.monotonic()
        for key, d in digests.items():
            intact += _digest(io.get(key)) == d
            if time.monotonic() - sampled > 1.0:  # the timeline goes on while the objects are read
                sample()
                sampled = time.monotonic()
        io.put("durability/written-while-degraded", b"written with one OSD down")
        degraded = sample()
        mark(f"read {intact}/{objects} objects back intact and wrote one more while {victim} is down",
             intact=intact, serving=degraded["serving"], pgs=degraded["pgs"]["states"])
    finally:
        # whatever happened, the OSD is not left held down (a lab must not leave the cluster degraded)
        cluster.release(victim)
    if restart is not None:
        restart(victim)
    t_release = time.monotonic()
    mark(f"released {victim}: restarting it")
    wait_for(lambda s: s["osds"]["up"] == s["osds"]["total"], f"{victim} coming back up")
    mark(f"{victim} is up again")
    after = wait_for(lambda s: s["serving"] == "ok", "recovery to all PGs active+clean")
    t_clean = time.monotonic()
    mark(f"recovered: all {sum(after['pgs']['states'].values())} PGs active+clean; {after['health']} "
         f"{after['health_reason']}".rstrip(), health=after["health"])
    for key in [*digests, "durability/written-while-degraded"]:
        io.delete(key)
    return {"objects": objects, "size": size, "osd": victim, "intact": intact,
            "seconds_to_detect": round(t_detect - t_kill, 2), "seconds_degraded": round(t_release - t_kill, 2),
            "seconds_to_recover": round(t_clean - t_release, 2), "events": events, "samples": samples}
