"""The meter: turns what the store and the engines say into usage rows, once per pass.

Crash safety. Each resource has a high-water mark (meter_marks.hwm, real time): everything
before it is billed, nothing after it is. A pass computes usage from each mark up to `now`
and writes the usage rows and the new marks in ONE transaction, so a kill -9 either loses the
whole pass (the next pass bills the same span again, once) or keeps all of it; it can never
bill a span twice. What a crash loses is only what lives in memory between passes: S3 request
counts since the last flush (at most one metering interval). Instances and storage keep being
metered across a server outage: their marks bill the downtime on the next pass, because the
engines kept running them (containers and VMs outlive the server; S3 objects cannot change
while it is down).

Instances. Cloud._save writes every state change to instance_states in the same transaction
as the state itself; the pass walks those changes from the mark, so running time is exact to
the transition, not to the pass. Running time bills per second with AWS's 60-second minimum
per start. A state that changed without a recorded change (a writer that bypasses _save) is
still caught by comparing the record with the mark, to within one pass.

Storage. Objects and multipart parts are integrated exactly from their `updated_at`; a
deletion is seen at the next pass. Volumes and snapshots come from block sources (see
BlockItem), sampled each pass.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..compute.types import INSTANCE_TYPES
from . import ledger
from .clock import BillingClock, hour_start
from .prices import PriceBook, PriceList
from .probes import EngineProbe, Sample

log = logging.getLogger("pocketcloud.billing")

RETENTION_S = 14 * 31 * 86400      # usage kept on the billing clock (Cost Explorer keeps 14 months)
RECENT_S = 24 * 3600               # engine samples kept for idle detection (real time)
SLOT_S = 10                        # ... in slots of this many real seconds


@dataclass(frozen=True)
class BlockItem:
    """One volume or snapshot as the volumes feature reports it to the meter (and hygiene).

    The volumes feature registers a source with `cloud.billing.add_block_source(fn)`, where
    fn() returns the current BlockItems of every account. The meter samples it each pass:
    volumes bill provisioned GiB (EBS:VolumeUsage.gp3), snapshots stored GiB (EBS:SnapshotUsage).
    """
    id: str
    account: str
    kind: str                       # "volume" | "snapshot"
    size_gib: float
    volume_type: str = "gp3"
    attached_to: str | None = None  # instance id; None = unattached ("available")
    created_at: float = 0.0         # real (wall-clock) time
    tags: dict = field(default_factory=dict)
    state: str = ""


BlockSource = Callable[[], Iterable[BlockItem]]


def request_tier(method: str, bucket: str | None, key: str | None, sub: Iterable[str]) -> str | None:
    """S3's request pricing classes: PUT/COPY/POST/LIST are tier 1, GET and everything else
    tier 2, DELETE free (None)."""
    sub = set(sub or ())
    if method == "DELETE":
        return None
    if method in ("PUT", "POST"):
        return ledger.S3_TIER1
    if method == "GET" and key is None and (not sub or sub & {"uploads", "list-type", "versions"}):
        return ledger.S3_TIER1  # ListObjects(V2), ListMultipartUploads
    if method == "GET" and "uploadId" in sub:
        return ledger.S3_TIER1  # ListParts
    return ledger.S3_TIER2


class Meter:
    def __init__(self, cloud, clock: BillingClock, prices: PriceBook):
        self.cloud = cloud
        self.store = cloud.store
        self.clock = clock
        self.prices = prices
        self.probe = EngineProbe(cloud.drivers)
        self.block_sources: list[BlockSource] = []
        self.lock = threading.Lock()          # one pass at a time
        self._req_lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._owners: dict[str, tuple[str | None, float]] = {}
        self.passes = 0
        self.last_pass: dict = {}

    # -- the S3 gateway's hook --------------------------------------------------------------
    def s3_request(self, method: str, bucket: str | None, key: str | None, sub: Iterable[str]) -> None:
        """Count one request against the bucket owner (AWS bills requests to the owner)."""
        if not bucket:
            return
        tier = request_tier(method, bucket, key, sub)
        if tier is None:
            return
        with self._req_lock:
            k = (bucket, tier)
            self._requests[k] = self._requests.get(k, 0) + 1

    def _owner(self, bucket: str) -> str | None:
        hit = self._owners.get(bucket)
        if hit and time.monotonic() - hit[1] < 30:
            return hit[0]
        row = self.store.one("SELECT owner FROM buckets WHERE name=?", (bucket,))
        owner = row["owner"] if row else None
        self._owners[bucket] = (owner, time.monotonic())
        return owner

    # -- one pass ---------------------------------------------------------------------------------
    def run_pass(self, probe_engines: bool = True, crash_after_usage: bool = False,
                 rescale: float | None = None) -> dict:
        """Meter everything up to now. With `rescale`, the billing clock takes the new time scale
        at that same instant, in the same transaction (usage so far keeps the old scale).
        `crash_after_usage` raises after the usage rows are written and before the commit
        (tests of the rollback)."""
        with self.lock:
            samples = self._probe() if probe_engines else {}
            prices = self.prices.current()
            with self._req_lock:
                requests, self._requests = self._requests, {}
            owners = {b: self._owner(b) for b, _ in requests}
            blocks = self._blocks()
            try:
                with self.store.tx() as c:
                    now = time.time()
                    summary = {"instances": self._instances(c, now, prices),
                               "storage": self._s3_storage(c, now, prices),
                               "requests": self._s3_requests(c, now, prices, requests, owners),
                               "block": self._block(c, now, prices, blocks),
                               # a pass without probes (a bill read on demand) leaves the engine marks alone
                               "engines": self._engines(c, now, prices, samples) if probe_engines else 0}
                    if crash_after_usage:
                        raise RuntimeError("simulated crash inside the metering transaction")
                    if self.passes % 100 == 0:
                        self._prune(c, now)
                    anchor = self.clock.rescale(c, rescale, now) if rescale is not None else None
            except BaseException:
                with self._req_lock:  # counts not billed go back for the next pass
                    for k, n in requests.items():
                        self._requests[k] = self._requests.get(k, 0) + n
                raise
            if anchor is not None:
                self.clock.adopt(anchor)
            self.passes += 1
            self.last_pass = {"at": now, **summary}
            return self.last_pass

    def _marks(self, c, kind: str) -> dict:
        return {r["resource"]: r for r in c.execute("SELECT * FROM meter_marks WHERE kind=?", (kind,))}

    @staticmethod
    def _set_mark(c, kind: str, resource: str, account: str, hwm: float, state: str | None, data: dict) -> None:
        c.execute("INSERT INTO meter_marks (kind, resource, account, hwm, state, data) VALUES (?,?,?,?,?,?) "
                  "ON CONFLICT (kind, resource) DO UPDATE SET account=excluded.account, hwm=excluded.hwm, "
                  "state=excluded.state, data=excluded.data", (kind, resource, account, hwm, state, json.dumps(data)))

    # -- instances ----------------------------------------------------------------------------------
    def _instances(self, c, now: float, prices: PriceList) -> int:
        rows = {r["id"]: r for r in c.execute("SELECT id, owner, kind, type, state, tags, created_at FROM instances")}
        marks = self._marks(c, "instance")
        events: dict[str, list] = {}
        last_seq = 0
        for e in c.execute("SELECT seq, instance, at, state FROM instance_states ORDER BY seq"):
            events.setdefault(e["instance"], []).append(e)
            last_seq = e["seq"]
        running = 0
        for iid in set(rows) | set(marks) | set(events):
            row, mark, evs = rows.get(iid), marks.get(iid), events.get(iid, [])
            if mark is not None:
                hwm, state, data = mark["hwm"], mark["state"], json.loads(mark["data"])
            elif row is not None:
                # First sight: from its first recorded change, or (no history: a cloud that had
                # instances before billing existed) from now, in the state it is in.
                hwm, state = (evs[0]["at"], "pending") if evs else (now, row["state"])
                data = {"run": 0.0}
            else:
                continue  # changes of a record already gone, never metered: nothing to bill
            if row is not None:
                data.update(account=row["owner"], type=row["type"], kind=row["kind"],
                            tags=json.loads(row["tags"] or "{}"))
            data["_id"] = iid
            cur = hwm
            for e in evs:
                t = min(max(e["at"], cur), now)
                state = self._advance(c, data, state, e["state"], cur, t, prices)
                cur = t
            if row is not None and row["state"] != state:
                state = self._advance(c, data, state, row["state"], cur, now, prices)
            elif state == "running":
                self._bill_run(c, data, cur, now, prices)
            if state == "running":
                running += 1
            if state == "terminated" or row is None:
                c.execute("DELETE FROM meter_marks WHERE kind IN ('instance', 'engine') AND resource=?", (iid,))
            else:
                self._set_mark(c, "instance", iid, data["account"], now, state, data)
        c.execute("DELETE FROM instance_states WHERE seq <= ?", (last_seq,))
        return running

    def _advance(self, c, data: dict, state: str, new: str, a: float, b: float, prices: PriceList) -> str:
        """Bill [a, b) in `state`, then move to `new` at b."""
        if state == "running":
            self._bill_run(c, data, a, b, prices)
            if new != "running":
                self._end_run(c, data, b, prices)
        elif new == "running":
            data["run"] = 0.0
        return new

    def _row(self, data: dict, resource: str) -> dict:
        return {"account": data["account"], "service": ledger.SERVICE_EC2,
                "usage_type": ledger.BOX_USAGE + data["type"], "resource": resource, "tags": data.get("tags"),
                "attrs": {"instance_type": data["type"], "platform": data["kind"], "operation": "RunInstances",
                          "region": self.cloud.config.region}}

    def _bill_run(self, c, data: dict, a: float, b: float, prices: PriceList) -> None:
        if b <= a:
            return
        sa, sb = self.clock.sim(a), self.clock.sim(b)
        data["run"] = data.get("run", 0.0) + ledger.add_hours(
            c, sim_a=sa, sim_b=sb, price_per_hour=prices.instance(data["type"]), **self._row(data, data["_id"]))

    def _end_run(self, c, data: dict, at: float, prices: PriceList) -> None:
        """AWS bills at least 60 seconds per start: top up a shorter run when it ends."""
        short = prices.minimum_seconds - data.get("run", 0.0)
        if short > 0:
            q = short / 3600.0
            ledger.add(c, hour=hour_start(self.clock.sim(at)), quantity=q, unit="Hrs",
                       cost=q * prices.instance(data["type"]), **self._row(data, data["_id"]))
        data["run"] = 0.0

    # -- object storage ------------------------------------------------------------------------------
    def _s3_storage(self, c, now: float, prices: PriceList) -> int:
        mark = c.execute("SELECT hwm FROM meter_marks WHERE kind='s3storage' AND resource='*'").fetchone()
        hwm = mark["hwm"] if mark else now
        n = 0
        if now > hwm:
            # Exact for writes: an object counts from max(hwm, its write time).
            rows = c.execute(
                "SELECT b.name AS bucket, b.owner AS owner, SUM(x.size * (? - MAX(?, x.updated_at))) AS bs FROM ("
                " SELECT bucket, size, updated_at FROM objects UNION ALL"
                " SELECT u.bucket, p.size, p.updated_at FROM multipart_parts p"
                " JOIN multipart_uploads u ON u.upload_id = p.upload_id) x"
                " JOIN buckets b ON b.name = x.bucket WHERE x.updated_at < ? GROUP BY b.name",
                (now, hwm, now)).fetchall()
            sa, sb = self.clock.sim(hwm), self.clock.sim(now)
            for r in rows:
                byte_sim_seconds = (r["bs"] or 0) * self.clock.scale
                ledger.add_gb_months(c, sim_a=sa, sim_b=sb, byte_seconds=byte_sim_seconds,
                                     price_per_gb_month=prices.s3_gb_month, account=r["owner"],
                                     service=ledger.SERVICE_S3, usage_type=ledger.S3_STORAGE, resource=r["bucket"],
                                     attrs={"region": self.cloud.config.region, "operation": "StandardStorage"})
                n += 1
        self._set_mark(c, "s3storage", "*", "", now, None, {})
        return n

    def _s3_requests(self, c, now: float, prices: PriceList, requests: dict, owners: dict) -> int:
        hour = hour_start(self.clock.sim(now))
        total = 0
        for (bucket, tier), count in requests.items():
            owner = owners.get(bucket)
            if owner is None:
                continue  # the bucket is gone (or never existed): nobody to bill
            per_1000 = prices.s3_tier1_per_1000 if tier == ledger.S3_TIER1 else prices.s3_tier2_per_1000
            ledger.add(c, account=owner, hour=hour, service=ledger.SERVICE_S3, usage_type=tier, resource=bucket,
                       quantity=float(count), unit="Requests", cost=count / 1000.0 * per_1000,
                       attrs={"region": self.cloud.config.region,
                              "operation": "PutObject" if tier == ledger.S3_TIER1 else "GetObject"})
            total += count
        return total

    # -- volumes and snapshots ---------------------------------------------------------------------------
    def _blocks(self) -> list[BlockItem]:
        items: list[BlockItem] = []
        for source in self.block_sources:
            try:
                items.extend(source())
            except Exception:  # noqa: BLE001 - one broken source must not stop the meter
                log.exception("a block storage source failed; its volumes are not metered this pass")
        return items

    def _block(self, c, now: float, prices: PriceList, items: list[BlockItem]) -> int:
        marks = self._marks(c, "block")
        for it in items:
            mark = marks.pop(it.id, None)
            hwm = mark["hwm"] if mark else now
            if now > hwm and it.size_gib > 0:
                sa, sb = self.clock.sim(hwm), self.clock.sim(now)
                volume = it.kind == "volume"
                ledger.add_gb_months(
                    c, sim_a=sa, sim_b=sb, byte_seconds=it.size_gib * ledger.GIB * (sb - sa),
                    price_per_gb_month=prices.gp3_gb_month if volume else prices.snapshot_gb_month,
                    account=it.account, service=ledger.SERVICE_EC2_OTHER,
                    usage_type=ledger.VOLUME_USAGE if volume else ledger.SNAPSHOT_USAGE, resource=it.id,
                    tags=it.tags, attrs={"region": self.cloud.config.region,
                                         "operation": "CreateVolume-Gp3" if volume else "CreateSnapshot"})
            self._set_mark(c, "block", it.id, it.account, now, it.state, {"size_gib": it.size_gib})
        for gone in marks:  # deleted since the last pass
            c.execute("DELETE FROM meter_marks WHERE kind='block' AND resource=?", (gone,))
        return len(items)

    # -- the engines' real usage ---------------------------------------------------------------------------
    def _probe(self) -> dict[str, tuple[dict, Sample | None]]:
        """Every running instance with its sample (None when the engine could not be read)."""
        return {r["id"]: (dict(r), self.probe.sample(r["kind"], r["engine_id"]))
                for r in self.store.query("SELECT id, owner, kind, type, engine_id, tags FROM instances "
                                          "WHERE state='running'")}

    def _engines(self, c, now: float, prices: PriceList, samples: dict) -> int:
        marks = self._marks(c, "engine")
        hour = hour_start(self.clock.sim(now))
        slot = int(now // SLOT_S)
        # A stopped instance loses its mark: it comes back with fresh counters (a new network
        # namespace or tap device). One the engine could not read this time keeps it, so a
        # missing mark always means counters that nothing has billed yet.
        for gone in set(marks) - set(samples):
            c.execute("DELETE FROM meter_marks WHERE kind='engine' AND resource=?", (gone,))
        for iid, (row, s) in samples.items():
            if s is None:
                continue
            mark = marks.get(iid)
            prev = json.loads(mark["data"]) if mark else None
            data = {"cpu_ns": s.cpu_ns, "tx": s.tx_bytes, "at": s.at}
            self._set_mark(c, "engine", iid, row["owner"], now, None, data)
            if prev is not None and s.at <= prev["at"]:
                continue
            if prev is None:
                # The first sample of a run: CPU and time start here, but bytes already sent (a
                # download in the first seconds) are billed, the counter being the run's own.
                dt, dcpu, dtx = 0.0, 0, s.tx_bytes or 0
            else:
                dt = s.at - prev["at"]
                # A counter that went down means the instance restarted: count from zero.
                dcpu = 0 if s.cpu_ns is None else (s.cpu_ns - prev["cpu_ns"] if prev.get("cpu_ns") is not None
                                                     and s.cpu_ns >= prev["cpu_ns"] else s.cpu_ns)
                dtx = 0 if s.tx_bytes is None else (s.tx_bytes - prev["tx"] if prev.get("tx") is not None
                                                      and s.tx_bytes >= prev["tx"] else s.tx_bytes)
            itype = INSTANCE_TYPES.get(row["type"])
            mem = s.mem_bytes or 0
            c.execute(
                "INSERT INTO engine_usage (resource, hour, account, kind, seconds, cpu_seconds, mem_byte_seconds, "
                "mem_peak, tx_bytes, vcpus, memory_mib) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (resource, hour) DO UPDATE SET seconds = seconds + excluded.seconds, "
                "cpu_seconds = cpu_seconds + excluded.cpu_seconds, "
                "mem_byte_seconds = mem_byte_seconds + excluded.mem_byte_seconds, "
                "mem_peak = MAX(mem_peak, excluded.mem_peak), tx_bytes = tx_bytes + excluded.tx_bytes",
                (iid, hour, row["owner"], row["kind"], dt, dcpu / 1e9, mem * dt, mem, dtx,
                 itype.vcpus if itype else 0, itype.memory_mib if itype else 0))
            c.execute("INSERT INTO engine_recent (resource, slot, seconds, cpu_seconds) VALUES (?,?,?,?) "
                      "ON CONFLICT (resource, slot) DO UPDATE SET seconds = seconds + excluded.seconds, "
                      "cpu_seconds = cpu_seconds + excluded.cpu_seconds", (iid, slot, dt, dcpu / 1e9))
            if dtx > 0:
                gb = dtx / ledger.GIB
                ledger.add(c, account=row["owner"], hour=hour, service=ledger.SERVICE_EC2_OTHER,
                           usage_type=ledger.TRANSFER_OUT, resource=iid, quantity=gb, unit="GB",
                           cost=gb * prices.transfer_out_gb, tags=json.loads(row["tags"] or "{}"),
                           attrs={"region": self.cloud.config.region, "platform": row["kind"],
                                  "instance_type": row["type"], "operation": "InterZone-Out"})
        return sum(1 for _, s in samples.values() if s is not None)

    def _prune(self, c, now: float) -> None:
        horizon = self.clock.sim(now) - RETENTION_S
        c.execute("DELETE FROM usage WHERE hour < ?", (horizon,))
        c.execute("DELETE FROM engine_usage WHERE hour < ?", (horizon,))
        c.execute("DELETE FROM engine_recent WHERE slot < ?", (int((now - RECENT_S) // SLOT_S),))
