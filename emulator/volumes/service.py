"""Block storage use cases (issue 15): create, describe, grow and delete volumes.

A mixin of `Cloud`, like Reconciling and Launching: every front end (EC2, REST, CLI) calls
these. A volume is created `creating`, becomes `available` once its file exists in the pool,
`in-use` while attached. Quotas are per account (count and GiB, EC2's `VolumeLimitExceeded`);
capacity is the host's: sparse files promise their full size, so a volume is created or grown
only while what all volumes may still write fits in the pool's free space times
`Config.volume_overcommit` (`InsufficientVolumeCapacity` otherwise).
"""
from __future__ import annotations

import json
import time
from functools import cached_property

from ..billing.meter import BlockItem
from ..errors import CloudError, InvalidParameter, InvalidState, NotFound, QuotaExceeded
from ..placement import placements
from ..validation import tags as clean_tags
from ..vpcs import ZONES
from . import GIB, GP3, Volume, new_volume_id
from .attach import VolumeAttachments, serial_of
from .launch import LaunchVolumes
from ..compute.libvirt.qemu_area import QemuArea
from .pool import VolumePool
from .snapshots import SnapshotUseCases, qemu_img_output, snapshot_gib

# gp3's bounds, as EC2 enforces them.
SIZE_GIB = (1, 16384)
IOPS = (3000, 16000)
THROUGHPUT = (125, 1000)
OTHER_TYPES = ("gp2", "io1", "io2", "st1", "sc1", "standard")
CAPACITY_LOCK = "volumes:capacity"


def _bounded(value, bounds: tuple[int, int], what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise InvalidParameter(f"{what} must be an integer from {bounds[0]} to {bounds[1]} for gp3, "
                               f"got {str(value)[:20]}", code="InvalidParameterValue")
    return value


def _volume_type(value) -> str:
    if value in (None, "", GP3["type"]):
        return GP3["type"]
    if value in OTHER_TYPES:
        raise InvalidParameter(f"volume type {value} is not offered: pocketcloud's volumes are all gp3 "
                               "(one disk on one host has one performance)", code="InvalidParameterValue")
    raise InvalidParameter(f"Value ({str(value)[:40]}) for parameter volumeType is invalid (valid: gp3)",
                           code="InvalidParameterValue")


class VolumeUseCases(VolumeAttachments, SnapshotUseCases, LaunchVolumes):
    """Mixed into Cloud; uses its store, config, locks, billing and resource tags. Attaching
    and detaching are attach.py's, snapshots snapshots.py's."""

    @cached_property
    def volume_area(self) -> QemuArea:
        """Where volume and snapshot files live: the cloud's QEMU area, which an unprivileged
        QEMU reaches (the home, under a 0700 /root, it cannot); the home without a VM engine."""
        area = getattr(self.drivers.get("vm"), "area", None)
        return area if isinstance(area, QemuArea) else QemuArea(self.config.home, None)

    @cached_property
    def volume_pool(self) -> VolumePool:
        area = self.volume_area
        return VolumePool(self.config.libvirt_uri, self.config.instance_label, area.volumes,
                          prepare=lambda: area.ensure("volumes"))

    def register_block_source(self) -> None:
        """The billing meter and hygiene see every account's volumes through this source."""
        def source() -> list[BlockItem]:
            vols = self.volumes.data()
            tags = {}
            for owner in {v.owner for v in vols}:
                tags.update(self.resource_tags.of(owner, [v.id for v in vols if v.owner == owner]))
            snaps = [s for s in self.all_snapshots() if s.state == "completed"]
            for owner in {s.owner for s in snaps}:
                tags.update(self.resource_tags.of(owner, [s.id for s in snaps if s.owner == owner]))
            return [BlockItem(v.id, v.owner, "volume", float(v.size_gib), v.volume_type, v.instance_id,
                              v.created_at, tags.get(v.id, {}), v.state) for v in vols if v.state != "creating"] + [
                BlockItem(s.id, s.owner, "snapshot", snapshot_gib(s), created_at=s.created_at,
                          tags=tags.get(s.id, {}), state=s.state) for s in snaps]

        self.billing.add_block_source(source)

    # -- reads ---------------------------------------------------------------------------------------
    def describe_volumes(self, caller, ids: list[str] | None = None) -> list[Volume]:
        """The caller's volumes: the root volume of each live instance, and the volumes it
        created. Asking for an id that is not there (another account's, a root volume gone
        with its instance) is `InvalidVolume.NotFound`."""
        live = [i for i in self.describe_instances(caller) if i.state != "terminated"]
        found = {v.id: v for w in placements(self, caller.id, live).values() for v in w.volumes}
        found.update((v.id, v) for v in self.volumes.data(caller.id))
        vols = sorted(found.values(), key=lambda v: (v.created_at, v.id))
        if ids:
            self.volumes.list(caller.id, ids)  # malformed / another account's -> the AWS error
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound(f"The volume '{missing[0]}' does not exist.", code="InvalidVolume.NotFound")
            vols = [v for v in vols if v.id in ids]
        return vols

    def _own_volume(self, caller, volume_id: str) -> Volume:
        return self.describe_volumes(caller, [volume_id])[0]

    # -- capacity and quotas ------------------------------------------------------------------------------
    def _check_room(self, caller, add_gib: int, new_volume: bool | int) -> None:
        """Quotas (the caller's) then capacity (the host's), for `new_volume` more volumes
        (True: one); under CAPACITY_LOCK."""
        mine = self.volumes.data(caller.id)
        if new_volume and len(mine) + int(new_volume) > self.config.max_volumes:
            raise QuotaExceeded(f"Maximum number of volumes reached: {self.config.max_volumes} per account; "
                                "delete one first", code="VolumeLimitExceeded")
        total = sum(v.size_gib for v in mine)
        if total + add_gib > self.config.max_volume_gib:
            raise QuotaExceeded(f"You have exceeded your maximum gp3 storage limit of {self.config.max_volume_gib} "
                                f"GiB: you have {total} GiB, this request asks for {add_gib} more",
                                code="VolumeLimitExceeded")
        pool = self.volume_pool
        unwritten = sum(max(0, v.size_gib * GIB - pool.allocated(v.id)) for v in self.volumes.data())
        room = self.config.volume_overcommit * pool.free_bytes()
        if unwritten + add_gib * GIB > room:
            raise QuotaExceeded(
                f"There is not enough free space on this host for {add_gib} GiB more: {room / GIB:.1f} GiB usable "
                f"(free space x over-commit {self.config.volume_overcommit:g}), volumes may still write "
                f"{unwritten / GIB:.1f} GiB", code="InsufficientVolumeCapacity")

    # -- writes ---------------------------------------------------------------------------------------
    def volume_request(self, *, zone, size_gib=None, volume_type=None, iops=None, throughput=None,
                       tags: dict | None = None) -> dict:
        """A CreateVolume request checked and completed with gp3's defaults (nothing changes:
        a front end's DryRun stops after this)."""
        region = self.config.region
        if not isinstance(zone, str) or not zone.startswith(region) or zone[len(region):] not in ZONES:
            raise InvalidParameter(f"Invalid availability zone: [{str(zone)[:40]}] (this region has "
                                   f"{', '.join(region + z for z in ZONES)})", code="InvalidParameterValue")
        _volume_type(volume_type)
        if size_gib is None:
            raise InvalidParameter("the request must contain the parameter size", code="MissingParameter")
        return {"zone": zone, "size_gib": _bounded(size_gib, SIZE_GIB, "Size (GiB)"),
                "iops": _bounded(GP3["iops"] if iops is None else iops, IOPS, "Iops"),
                "throughput": _bounded(GP3["throughput"] if throughput is None else throughput, THROUGHPUT,
                                       "Throughput"),
                "tags": clean_tags(tags)}

    def create_volume(self, caller, *, snapshot_id: str | None = None, **request) -> Volume:
        """See volume_request for the arguments; with a snapshot, its data (and by default its
        size: never less)."""
        if snapshot_id:
            snapshot_id, request["size_gib"] = self.snapshot_for_volume(caller, snapshot_id, request.get("size_gib"))
        r = self.volume_request(**request)
        size, clean = r["size_gib"], r["tags"]
        zone_suffix = r["zone"][len(self.config.region):]
        vid = new_volume_id()
        # The new volume's lock from before its record exists: the reconcile pass rolls back a
        # `creating` volume it can lock (a dead server's), never one being made here.
        with self._locks.hold(CAPACITY_LOCK), self._locks.hold(vid):
            self._check_room(caller, size, new_volume=True)
            vol = self.volumes.insert(caller.id, zone_suffix, size, r["iops"], r["throughput"], snapshot_id or "",
                                      volume_id=vid)
            try:
                if clean:
                    self.resource_tags.set(caller.id, [vol.id], clean)
                self.volume_pool.create(vol.id, size * GIB)
                if snapshot_id:
                    self.fill_from_snapshot(caller, snapshot_id, vol.id)
            except BaseException:
                self.volume_pool.delete(vol.id)
                self._forget_volume(vol.id)
                raise
            self.volumes.update(vol.id, state="available")
        return self.volumes.get(caller.id, vol.id)

    def _forget_volume(self, volume_id: str) -> None:
        self.volumes.remove(volume_id)
        self.resource_tags.forget([volume_id])

    def delete_volume(self, caller, volume_id: str) -> None:
        vol = self._own_volume(caller, volume_id)
        with self._locks.hold(vol.id):
            vol = self.volumes.get(caller.id, vol.id)
            if vol.root or vol.state == "in-use":
                where = f" attached to {vol.instance_id}" if vol.instance_id else ""
                raise InvalidState(f"Volume {vol.id} is currently attached{where}: detach it first"
                                   + (" (a root volume goes with its instance)" if vol.root else ""),
                                   code="VolumeInUse")
            if vol.state not in ("available", "error"):
                raise InvalidState(f"Volume {vol.id} is {vol.state}", code="IncorrectState")
            self.volumes.update(vol.id, state="deleting")
            try:
                self.volume_pool.delete(vol.id)
            except CloudError:
                self.volumes.update(vol.id, state=vol.state)  # still there, still usable
                raise
            self._forget_volume(vol.id)

    def modify_volume(self, caller, volume_id: str, *, size_gib=None, volume_type=None, iops=None,
                      throughput=None) -> dict:
        """Grow a volume (and set its gp3 figures). Done at once, so the modification is
        `completed` when this returns; a guest sees the new size of an attached volume."""
        vol = self._own_volume(caller, volume_id)
        _volume_type(volume_type)
        if vol.root:
            raise InvalidParameter(f"Volume {vol.id} is the root volume of {vol.instance_id}: its size is "
                                   "its image's", code="UnsupportedOperation")
        size = vol.size_gib if size_gib is None else _bounded(size_gib, SIZE_GIB, "Size (GiB)")
        iops = vol.iops if iops is None else _bounded(iops, IOPS, "Iops")
        throughput = vol.throughput if throughput is None else _bounded(throughput, THROUGHPUT, "Throughput")
        if size < vol.size_gib:
            raise InvalidParameter(f"New size cannot be smaller than existing size ({vol.size_gib} GiB): "
                                   "volumes only grow", code="InvalidParameterValue")
        if (size, iops, throughput) == (vol.size_gib, vol.iops, vol.throughput):
            raise InvalidParameter(f"New parameters of volume {vol.id} are the same as its current ones",
                                   code="InvalidParameterCombination")
        started = time.time()
        with self._locks.hold(CAPACITY_LOCK), self._locks.hold(vol.id):
            vol = self.volumes.get(caller.id, vol.id)
            if size > vol.size_gib:
                if vol.state not in ("available", "in-use"):
                    raise InvalidState(f"Volume {vol.id} is {vol.state}", code="IncorrectState")
                self._check_room(caller, size - vol.size_gib, new_volume=False)
                self._grow(caller, vol, size * GIB)
            self.volumes.update(vol.id, size_gib=size, iops=iops, throughput=throughput)
        original = {"size": vol.size_gib, "iops": vol.iops, "throughput": vol.throughput, "type": vol.volume_type}
        target = {"size": size, "iops": iops, "throughput": throughput, "type": vol.volume_type}
        with self.store.tx() as c:
            c.execute("INSERT OR REPLACE INTO volume_modifications (volume_id, owner, original, target, started_at,"
                      " finished_at) VALUES (?,?,?,?,?,?)",
                      (vol.id, caller.id, json.dumps(original), json.dumps(target), started, time.time()))
        return self._modification(vol.id, original, target, started, time.time())

    def _grow(self, caller, vol: Volume, size_bytes: int) -> None:
        """A running VM grows its disk live; a stopped one, or a detached volume, through the
        file; a container's filesystem cannot grow under its mount here (detach first)."""
        inst = self._row(vol.instance_id) if vol.instance_id else None
        if inst is not None and inst.engine_id and inst.state != "terminated":
            if self.driver(inst.kind).grow_volume(inst.engine_id, serial_of(vol.id), size_bytes):
                return
            if inst.kind != "vm" or inst.state == "running":
                raise InvalidState(f"Volume {vol.id} is attached to container {inst.id}, whose filesystem cannot "
                                   "grow while mounted here: detach it, grow it, attach it again",
                                   code="IncorrectState")
        self.volume_pool.grow(vol.id, size_bytes)

    @staticmethod
    def _modification(volume_id: str, original: dict, target: dict, started: float, finished: float | None) -> dict:
        return {"volume_id": volume_id, "state": "completed" if finished else "modifying", "progress": 100,
                "original": original, "target": target, "started_at": started, "finished_at": finished}

    def describe_volume_modifications(self, caller, ids: list[str] | None = None) -> list[dict]:
        if ids:
            self.describe_volumes(caller, ids)
        rows = self.store.query("SELECT * FROM volume_modifications WHERE owner=? ORDER BY started_at", (caller.id,))
        return [self._modification(r["volume_id"], json.loads(r["original"]), json.loads(r["target"]),
                                   r["started_at"], r["finished_at"])
                for r in rows if not ids or r["volume_id"] in ids]

    # -- open the lid -------------------------------------------------------------------------------
    def volume_internals(self, caller, volume_id: str) -> dict:
        """What a volume is on this host: its file in the pool and qemu-img's view of it (format,
        sizes, the backing chain), and where its instance sees it."""
        vol = self._own_volume(caller, volume_id)
        if vol.root:
            raise InvalidParameter(f"{vol.id} is a root volume: see its instance's internals (its disk overlay)",
                                   code="UnsupportedOperation")
        path = self.volume_pool.file(vol.id)
        info = json.loads(qemu_img_output(["info", "-U", "--output=json", "--backing-chain", str(path)],
                                          f"look at {vol.id}"))
        out = {"volume_id": vol.id, "state": vol.state, **self.volume_pool.describe(), "file": str(path),
               "size_bytes": vol.size_gib * GIB, "allocated_bytes": self.volume_pool.allocated(vol.id),
               "chain": [{"file": i.get("filename"), "format": i.get("format"), "virtual_size": i.get("virtual-size"),
                          "actual_size": i.get("actual-size")} for i in (info if isinstance(info, list) else [info])],
               "snapshot_id": vol.snapshot_id or None, "attachment": None}
        if vol.instance_id:
            inst = self._row(vol.instance_id)
            how = ("a virtio disk of the domain, hot-plugged; serial " if inst.kind == "vm" else
                   "a filesystem mounted by the host (qemu-storage-daemon FUSE export, loop device) and seen by "
                   "the container through mount propagation; export ")
            out["attachment"] = {"instance_id": inst.id, "kind": inst.kind, "device": vol.device,
                                 "guest_device": vol.guest_device, "how": how + serial_of(vol.id)}
            try:  # the engine's side, read now; the record above stands if the engine cannot say
                out["attachment"]["engine"] = self.driver(inst.kind).volume_view(
                    inst.engine_id or "", inst.id, serial_of(vol.id), vol.device or "")
            except CloudError as e:
                out["attachment"]["engine"] = {"error": e.message}
        return out
