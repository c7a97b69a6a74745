"""Volumes at launch (RunInstances `BlockDeviceMappings`, REST `block_devices`): extra volumes
made with the instance, and a root device larger than its image. A mixin of Cloud beside
VolumeUseCases.

Everything is checked before anything is made (device names, sizes, snapshots, the account's
quotas and the host's capacity). The volumes are then made `creating`, already tied to their
instance and device, and become `in-use` once the instance has them: a container's are
mounted before the container is created (it sees them from its first process, through the
same /volumes mount as AttachVolume's), a VM's are hot-plugged once its guest is ready (a
launch under TCG takes tens of seconds; the guest is then up to take a hot-plugged disk like
any AttachVolume). A launch volume is never left `available`: a failed launch, a terminate
while it launches, or a server killed meanwhile (reconcile) removes it, whatever its
DeleteOnTermination says; an instance that runs with it settles it `in-use`.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from ..errors import CloudError, InvalidParameter, NotFound
from . import GIB, GP3, ROOT_DEVICE, Volume, root_size_gib
from .attach import DEVICE, serial_of

log = logging.getLogger("pocketcloud")

FIELDS = {"device", "size_gib", "snapshot_id", "volume_type", "delete_on_termination", "iops", "throughput",
          "encrypted", "no_device"}
MAX_MAPPINGS = 26  # a root and one per letter b-z; more is malformed whatever the quota says


@dataclass(frozen=True)
class LaunchVolume:
    device: str
    size_gib: int
    snapshot_id: str
    iops: int
    throughput: int
    delete_on_termination: bool


@dataclass(frozen=True)
class LaunchDisks:
    root_gib: int | None  # None: as large as the image
    extra: tuple[LaunchVolume, ...] = ()

    @property
    def gib(self) -> int:
        return sum(v.size_gib for v in self.extra)


def _bad(message: str, code: str = "InvalidParameterValue") -> InvalidParameter:
    return InvalidParameter(message, code=code)


def _flag(m: dict, key: str, default: bool) -> bool:
    value = m.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(f"BlockDeviceMapping {key} must be true or false, got {str(value)[:20]}")
    return value


class LaunchVolumes:
    """Mixed into Cloud; uses VolumeUseCases (_check_room, volume_pool, snapshots) and the
    instance helpers."""

    # -- checked before anything is made ------------------------------------------------------
    def plan_launch_disks(self, caller, image: str, kind: str, mappings, count: int = 1) -> LaunchDisks:
        """plan_block_devices for a launch of `count` instances of `image`, with the room for
        all their volumes checked."""
        if mappings is None:
            return LaunchDisks(None)
        row = self.launch_image(caller.id, image, kind)  # the catalog's, or one of the caller's own AMIs
        image_gib = root_size_gib(kind, row["ref"], json.loads(row["details"] or "{}"), row["size"])
        disks = self.plan_block_devices(caller, kind, image_gib, mappings)
        self.check_launch_room(caller, disks, count)
        return disks

    def plan_block_devices(self, caller, kind: str, image_root_gib: int, mappings) -> LaunchDisks:
        """The mappings of a launch, checked and completed with gp3's defaults; the caller's
        snapshots only (another account's answers InvalidSnapshot.NotFound)."""
        from .service import IOPS, SIZE_GIB, THROUGHPUT, _bounded, _volume_type

        if mappings is None:
            return LaunchDisks(None)
        if not isinstance(mappings, list) or len(mappings) > MAX_MAPPINGS:
            raise _bad(f"block device mappings must be a list of at most {MAX_MAPPINGS}")
        root_gib, extra, letters, root_seen = None, [], set(), False
        for i, m in enumerate(mappings, 1):
            if not isinstance(m, dict):
                raise _bad(f"block device mapping {i} must be an object")
            unknown = sorted(set(m) - FIELDS)
            if unknown:
                raise _bad(f"block device mapping {i}: unknown field {str(unknown[0])[:40]!r} "
                           f"(known: {', '.join(sorted(FIELDS))})")
            device = m.get("device")
            if not isinstance(device, str) or not device:
                raise _bad(f"block device mapping {i} needs a device name", code="MissingParameter")
            if m.get("encrypted"):
                raise InvalidParameter(f"{device[:40]}: encrypted volumes are not offered (one host, its own disks)",
                                       code="UnsupportedOperation")
            _volume_type(m.get("volume_type"))
            iops = GP3["iops"] if m.get("iops") is None else _bounded(m["iops"], IOPS, "Iops")
            throughput = (GP3["throughput"] if m.get("throughput") is None
                          else _bounded(m["throughput"], THROUGHPUT, "Throughput"))
            if device == ROOT_DEVICE[kind]:
                root_gib = self._plan_root(kind, image_root_gib, m, root_seen)
                root_seen = True
                continue
            match = DEVICE.fullmatch(device)
            if not match:
                raise _bad(f"Invalid device name {device[:40]} (use {ROOT_DEVICE[kind]} for the root, /dev/sdf to "
                           "/dev/sdp or /dev/xvdb to /dev/xvdz for volumes)")
            if match.group(1) in letters:
                raise _bad(f"the device {device} is mapped twice (/dev/sdX and /dev/xvdX share one slot)")
            letters.add(match.group(1))
            if _flag(m, "no_device", False):
                continue  # the image maps nothing there to suppress
            size, snapshot_id = m.get("size_gib"), m.get("snapshot_id") or ""
            if snapshot_id:
                snapshot_id, size = self.snapshot_for_volume(caller, snapshot_id, size)
            elif size is None:
                raise _bad(f"{device}: give a volume size or a snapshot id", code="MissingParameter")
            extra.append(LaunchVolume(device, _bounded(size, SIZE_GIB, "Size (GiB)"), snapshot_id, iops, throughput,
                                      _flag(m, "delete_on_termination", True)))
        return LaunchDisks(root_gib, tuple(extra))

    def _plan_root(self, kind: str, image_gib: int, m: dict, again: bool) -> int | None:
        from .service import SIZE_GIB, _bounded

        device = ROOT_DEVICE[kind]
        if again:
            raise _bad(f"the root device {device} is mapped twice")
        if _flag(m, "no_device", False) or m.get("snapshot_id"):
            raise InvalidParameter(f"the root device {device} comes from the image: it cannot be left out or "
                                   "made from a snapshot here", code="UnsupportedOperation")
        if not _flag(m, "delete_on_termination", True):
            raise InvalidParameter(f"the root volume ({device}) goes with its instance here: DeleteOnTermination "
                                   "false is not served", code="UnsupportedOperation")
        size = m.get("size_gib")
        if size is None or size == image_gib:
            return None
        size = _bounded(size, SIZE_GIB, "Size (GiB)")
        if size < image_gib:
            raise _bad(f"Volume of size {size} GiB is smaller than the image's root device ({image_gib} GiB)")
        if kind == "container" and not self.config.container_disk_size:
            raise InvalidParameter(
                f"a container's root is its writable layer, which Docker sizes only with --storage-opt size, and "
                f"only on storage drivers that support it (overlay2 on xfs with pquota, btrfs, zfs); this host's "
                f"dockerd is not set up for it (POCKETCLOUD_CONTAINER_DISK unset), so a root of {size} GiB "
                f"cannot be promised: leave the root's size as the image's ({image_gib} GiB) and add a volume",
                code="UnsupportedOperation")
        return size

    def check_launch_room(self, caller, disks: LaunchDisks, count: int = 1) -> None:
        """Quotas and capacity for `count` instances' volumes, before anything is made."""
        from .service import CAPACITY_LOCK

        if disks.extra:
            with self._locks.hold(CAPACITY_LOCK):
                self._check_room(caller, disks.gib * count, new_volume=len(disks.extra) * count)

    # -- made with the instance ---------------------------------------------------------------
    def create_launch_volumes(self, caller, instance_id: str, zone_suffix: str, disks: LaunchDisks) -> list[Volume]:
        """The instance's volumes, `creating` and tied to it; all or none."""
        from .service import CAPACITY_LOCK

        made: list[Volume] = []
        if not disks.extra:
            return made
        with self._locks.hold(CAPACITY_LOCK):
            self._check_room(caller, disks.gib, new_volume=len(disks.extra))
            try:
                for want in disks.extra:
                    vol = self.volumes.insert(caller.id, zone_suffix, want.size_gib, want.iops, want.throughput,
                                              want.snapshot_id)
                    self.volumes.update(vol.id, instance_id=instance_id, device=want.device, attached_at=time.time(),
                                        delete_on_termination=int(want.delete_on_termination))
                    made.append(vol)
                    self.volume_pool.create(vol.id, want.size_gib * GIB)
                    if want.snapshot_id:
                        self.fill_from_snapshot(caller, want.snapshot_id, vol.id)
            except BaseException:
                self.drop_launch_volumes(instance_id)
                raise
        return made

    def prepare_launch_volumes(self, caller, instance_id: str, subnet_id: str | None, disks: LaunchDisks,
                               op_id: int) -> None:
        """The instance is recorded, its engine not asked yet: its volumes made in its zone
        (and mounted where the engine takes them at create); on failure they and the record
        go, and the launch's journal entry ends."""
        try:
            zone = self.vpcs.subnet_for(caller.id, self.config.region, subnet_id).zone
            self.create_launch_volumes(caller, instance_id, zone[len(self.config.region):], disks)
            self.fault("volumes")  # crash tests: POCKETCLOUD_FAULT=launch:after-volumes
            self.mount_launch_volumes(instance_id, self._row(instance_id).kind)
        except BaseException:
            self.drop_launch_volumes(instance_id)
            with self.store.tx() as c:
                c.execute("DELETE FROM instances WHERE id=?", (instance_id,))
            self.journal.finish(op_id)
            raise

    def mount_launch_volumes(self, instance_id: str, kind: str) -> None:
        """Before the engine creates the instance: what its engine can give it from the start
        (a container's mounts; a VM's disks wait until its guest is up)."""
        driver = self.driver(kind)
        for vol in self.volumes.attached_to(instance_id):
            if vol.state == "creating":
                where = driver.attach_at_launch(instance_id, self.volume_pool.file(vol.id), serial_of(vol.id),
                                                vol.device)
                if where:
                    self.volumes.update(vol.id, guest_device=where)

    def finish_launch_volumes(self, instance_id: str) -> None:
        """The instance runs: its launch volumes are attached (hot-plugged now where the
        engine could not give them at create) and `in-use`."""
        with self._lock(instance_id):  # a terminate meanwhile waits, then releases them as attached
            inst = self._row(instance_id)
            if inst is None or inst.state == "terminated" or not inst.engine_id:
                return
            driver = self.driver(inst.kind)
            vols = [v for v in self.volumes.attached_to(instance_id) if v.state == "creating"]
            # All attached before any is in-use: a failure leaves every one `creating`, which
            # the failed launch's rollback removes.
            guests = {v.id: v.guest_device or driver.attach_volume(
                inst.engine_id, inst.id, self.volume_pool.file(v.id), serial_of(v.id), v.device) for v in vols}
            if vols:
                self.fault("launch-attach", op="volume")  # POCKETCLOUD_FAULT=volume:after-launch-attach
            for v in vols:
                self.volumes.update(v.id, state="in-use", guest_device=guests[v.id])

    def drop_launch_volumes(self, instance_id: str) -> list[str]:
        """Remove the launch volumes an instance never got to use (a failed or interrupted
        launch), from the engine first, then their files and records."""
        inst = self._row(instance_id)
        dropped = []
        for vol in self.volumes.attached_to(instance_id):
            if vol.state != "creating":
                continue
            try:
                if inst is not None and (inst.engine_id or vol.guest_device):  # the engine has (had) it
                    self.driver(inst.kind).detach_volume(inst.engine_id or "", inst.id, serial_of(vol.id),
                                                         vol.device)
                self.volume_pool.delete(vol.id)
            except CloudError as e:  # the record stays `creating`: the next reconcile pass tries again
                log.warning("launch volume %s of %s not removed yet: %s", vol.id, instance_id, e)
                continue
            self._forget_volume(vol.id)
            dropped.append(vol.id)
        return dropped

    def settle_launch_volume(self, vol: Volume, report: list[str]) -> None:
        """Reconcile: a launch volume whose launch is not running in this server any more is
        attached (the instance's engine has it) or removed; never left behind."""
        inst = self._row(vol.instance_id)
        if inst is not None and inst.state != "terminated" and self.launching_now(inst.id):
            return
        disks = {}
        if inst is not None and inst.engine_id and inst.state != "terminated":
            try:
                disks = self.driver(inst.kind).volume_disks(inst.engine_id)
            except NotFound:
                disks = {}
        if serial_of(vol.id) in disks:
            self.volumes.update(vol.id, state="in-use", guest_device=disks[serial_of(vol.id)])
            report.append(f"{vol.id}: launch volume settled in-use")
        else:
            report += [f"{v}: launch volume of an interrupted launch removed"
                       for v in self.drop_launch_volumes(vol.instance_id)]
