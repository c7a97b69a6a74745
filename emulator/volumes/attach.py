"""Attaching volumes to instances, detaching them, and what becomes of them when their
instance goes (block storage, issue 15). A mixin of Cloud beside VolumeUseCases.

The EC2 device name (`/dev/sdf`, `/dev/xvdf`) is what the caller chose and what EC2 reports;
the engine picks the guest's own name (a VM's next free `/dev/vdX`), reported beside it,
as on EC2's Nitro instances where `/dev/sdf` turns up as an NVMe disk. The volume's record
moves `available -> attaching -> in-use -> detaching -> available`; the engine is asked only
while the record says where the volume is going, and a failure puts the record back.
"""
from __future__ import annotations

import logging
import re
import time

from ..errors import CloudError, InvalidParameter, InvalidState, NotFound
from ..placement import placements
from . import Volume

log = logging.getLogger("pocketcloud")

# The names EC2 accepts for an EBS volume on Linux, beyond the root device.
DEVICE = re.compile(r"/dev/(?:sd|xvd|vd)([b-z])")


def serial_of(volume_id: str) -> str:
    """The id as the guest reads it (virtio serials hold 20 bytes; EC2's NVMe disks drop the dash too)."""
    return volume_id.replace("-", "")


class VolumeAttachments:
    """Mixed into Cloud; uses VolumeUseCases (volume_pool, _own_volume) and the instance helpers."""

    def attach_volume(self, caller, volume_id: str, instance_id: str, device: str) -> Volume:
        if not isinstance(device, str) or not DEVICE.fullmatch(device):
            raise InvalidParameter(f"Value ({str(device)[:40]}) for parameter device is invalid. "
                                   f"{str(device)[:40]} is not a valid EBS device name (use /dev/sdf to /dev/sdp, "
                                   "or /dev/xvdb to /dev/xvdz)", code="InvalidParameterValue")
        vol = self._own_volume(caller, volume_id)
        inst = self.get_instance(caller, instance_id)
        with self._lock(inst.id), self._locks.hold(vol.id):
            vol, inst = self.volumes.get(caller.id, vol.id), self._row(inst.id)
            if vol.root or vol.instance_id or vol.state == "in-use":
                raise InvalidState(f"{vol.id} is already attached to an instance ({vol.instance_id})",
                                   code="VolumeInUse")
            if vol.state != "available":
                raise InvalidState(f"Volume '{vol.id}' is in the '{vol.state}' state.", code="IncorrectState")
            if inst.state not in ("running", "stopped"):
                raise InvalidState(f"Instance '{inst.id}' is not 'running' or 'stopped' (it is {inst.state}).",
                                   code="IncorrectInstanceState")
            where = placements(self, caller.id, [inst])[inst.id]
            if where.interface.zone != vol.zone(self.config.region):
                raise InvalidParameter(f"The volume '{vol.id}' is not in the same availability zone as instance "
                                       f"'{inst.id}' ({vol.zone(self.config.region)} vs {where.interface.zone})",
                                       code="InvalidVolume.ZoneMismatch")
            letter = DEVICE.fullmatch(device).group(1)
            for other in where.volumes:
                m = DEVICE.fullmatch(other.device or "")
                if other.device == device or (m and m.group(1) == letter):
                    raise InvalidParameter(f"Attachment point {device} is already in use (by {other.id})",
                                           code="InvalidParameterValue")
            driver = self.driver(inst.kind)
            self.volumes.update(vol.id, state="attaching", instance_id=inst.id, device=device, attached_at=time.time(),
                                delete_on_termination=0)
            try:
                guest = driver.attach_volume(inst.engine_id, inst.id, self.volume_pool.file(vol.id), serial_of(vol.id),
                                             device)
            except BaseException:
                self.volumes.update(vol.id, state="available", instance_id=None, device=None, attached_at=None)
                raise
            self.fault("engine-attach", op="volume")  # crash tests: POCKETCLOUD_FAULT=volume:after-engine-attach
            self.volumes.update(vol.id, state="in-use", guest_device=guest)
        return self.volumes.get(caller.id, vol.id)

    def detach_volume(self, caller, volume_id: str, *, instance_id: str | None = None,
                      device: str | None = None) -> Volume:
        """Detach; returns the record as it was while detaching (what EC2 answers)."""
        vol = self._own_volume(caller, volume_id)
        if vol.root:
            raise InvalidParameter(f"Unable to detach root volume '{vol.id}' from instance '{vol.instance_id}'",
                                   code="OperationNotPermitted")
        if not vol.instance_id:
            raise InvalidState(f"Volume '{vol.id}' is in the '{vol.state}' state.", code="IncorrectState")
        if (instance_id and instance_id != vol.instance_id) or (device and device != vol.device):
            raise NotFound(f"The volume '{vol.id}' is not attached to '{instance_id or device}'",
                           code="InvalidAttachment.NotFound")
        with self._lock(vol.instance_id), self._locks.hold(vol.id):
            vol = self.volumes.get(caller.id, vol.id)
            if vol.state != "in-use":
                raise InvalidState(f"Volume '{vol.id}' is in the '{vol.state}' state.", code="IncorrectState")
            inst = self._row(vol.instance_id)
            self.volumes.update(vol.id, state="detaching")
            try:
                if inst is not None and inst.engine_id and inst.state != "terminated":
                    self.driver(inst.kind).detach_volume(inst.engine_id, inst.id, serial_of(vol.id), vol.device)
            except BaseException:
                self.volumes.update(vol.id, state="in-use")
                raise
            detaching = self.volumes.get(caller.id, vol.id)
            self.volumes.update(vol.id, state="available", instance_id=None, device=None, attached_at=None,
                                guest_device=None, delete_on_termination=0)
        return detaching

    def set_delete_on_termination(self, caller, instance_id: str, device: str, value: bool) -> Volume:
        """ModifyInstanceAttribute's BlockDeviceMapping: the flag of the volume at `device`."""
        inst = self.get_instance(caller, instance_id)
        where = placements(self, caller.id, [inst]).get(inst.id)
        for v in where.volumes if where else ():
            if v.device == device:
                self.volumes.update(v.id, delete_on_termination=int(bool(value)))
                return self.volumes.get(caller.id, v.id)
        raise InvalidParameter(f"The device '{str(device)[:40]}' is not attached to {inst.id}",
                               code="InvalidInstanceAttributeValue")

    def release_volumes(self, instance_id: str) -> None:
        """The instance is terminated: its volumes with DeleteOnTermination go (file and record),
        the others become available. Called from every path that terminates an instance, after
        its engine object went; the engine lets go of what it held beside it (a container's
        host mount)."""
        self.drop_launch_volumes(instance_id)  # never attached: they go whatever DeleteOnTermination says
        inst = self._row(instance_id)
        for vol in self.volumes.attached_to(instance_id):
            if vol.state == "creating":
                continue  # a launch volume drop_launch_volumes could not remove yet: reconcile retries
            with self._locks.hold(vol.id):
                try:
                    if inst is not None:
                        self.driver(inst.kind).detach_volume(inst.engine_id or "", inst.id, serial_of(vol.id),
                                                             vol.device)
                    if vol.delete_on_termination:
                        self.volume_pool.delete(vol.id)
                        self._forget_volume(vol.id)
                        continue
                except CloudError as e:  # the record stays (available), so the file is not lost track of
                    log.warning("volume %s of terminated %s was not released cleanly: %s", vol.id, instance_id, e)
                self.volumes.update(vol.id, state="available", instance_id=None, device=None, attached_at=None,
                                    guest_device=None, delete_on_termination=0)

    # -- after a crash --------------------------------------------------------------------------------
    def restore_volume_mounts(self, kind: str, live: dict) -> list[str]:
        """Every in-use volume back where its instance sees it, before the instances' states
        are reconciled: after a host reboot a container's host mounts and exports are gone
        (and dockerd could not start it), after a killed export its mount is dead. `live` is
        the engine's listing of this pass (instance id -> EngineInstance)."""
        report: list[str] = []
        # every live instance: one without volumes also needs what its engine shares with all
        # (a container's /volumes comes from a shared mount a reboot undoes)
        for r in self.store.query("SELECT id FROM instances WHERE kind=? AND state NOT IN ('terminated', 'pending')",
                                  (kind,)):
            with self._lock(r["id"]):
                inst = self._row(r["id"])
                if inst is None or inst.state in ("terminated", "pending") or not inst.engine_id:
                    continue
                # read under the instance's lock: a detach that ran since this pass began has
                # unmounted its volume, and a list read before would mount it again (leaked)
                vols = [v for v in self.volumes.attached_to(inst.id) if v.state == "in-use"]
                seen = live.get(inst.id)
                try:
                    report += self.driver(kind).restore_volumes(
                        inst.engine_id, inst.id, [(self.volume_pool.file(v.id), serial_of(v.id), v.device) for v in vols],
                        running=inst.state == "running", seen_running=seen is not None and seen.state == "running")
                except CloudError as e:  # the next pass tries again
                    log.warning("the volumes of %s are not restored yet: %s", inst.id, e)
        return report

    def reconcile_volumes(self) -> list[str]:
        """Settle what a server that died left half-done: a create or delete (the file goes),
        an attach or detach (the engine says whether the instance has the volume). An
        operation of this server holds the volume's lock, so it is waited for, never undone."""
        report: list[str] = []
        for vol in self.volumes.data():
            if vol.state in ("available", "in-use", "error"):
                continue
            with self._locks.hold(vol.id):
                vol = next((v for v in self.volumes.data(vol.owner) if v.id == vol.id), None)
                if vol is None or vol.state in ("available", "in-use", "error"):
                    continue
                try:
                    self._settle_volume(vol, report)
                except CloudError as e:
                    log.warning("reconcile: volume %s (%s) not settled yet: %s", vol.id, vol.state, e)
        return report

    def _settle_volume(self, vol: Volume, report: list[str]) -> None:
        if vol.state == "creating" and vol.instance_id:
            self.settle_launch_volume(vol, report)
            return
        if vol.state in ("creating", "deleting"):
            self.volume_pool.delete(vol.id)
            self._forget_volume(vol.id)
            report.append(f"{vol.id}: {vol.state} rolled back")
            return
        inst = self._row(vol.instance_id) if vol.instance_id else None
        disks = {}
        if inst is not None and inst.engine_id and inst.state != "terminated":
            disks = self.driver(inst.kind).volume_disks(inst.engine_id)
        if serial_of(vol.id) in disks:
            self.volumes.update(vol.id, state="in-use", guest_device=disks[serial_of(vol.id)])
            report.append(f"{vol.id}: {vol.state} settled in-use")
        else:
            self.volumes.update(vol.id, state="available", instance_id=None, device=None, attached_at=None,
                                guest_device=None, delete_on_termination=0)
            report.append(f"{vol.id}: {vol.state} settled available")
