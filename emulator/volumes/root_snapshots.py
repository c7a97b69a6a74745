"""Snapshots of root volumes (issue 15): what an image of an account's own is made from.

A VM's root is a qcow2 overlay on its image's base disk; its snapshot is that disk flattened
into one standalone qcow2 file in snapshots/ (a libvirt push backup while the guest runs,
`qemu-img convert` of the overlay while it is stopped), so it is a disk like any snapshot:
a volume can be made from it, and it outlives the image it came from.

A container's root is its image plus its writable layer: a filesystem, never a block device.
Its snapshot is a Docker image (`docker commit`, the container paused meanwhile), labelled
with the cloud and the snapshot id and removed with the snapshot. It stores only the new
layer (the image below is shared), and it can make images (RegisterImage, CreateImage), not
volumes. A tar of the filesystem would have been a copy of everything, and launching it would
mean importing it back into Docker anyway.
"""
from __future__ import annotations

import logging

from ..errors import CloudError, InvalidState
from . import Volume

log = logging.getLogger(__name__)


def source_image_of(inst) -> str:
    """How a root snapshot remembers the image its instance ran: an AMI of an account's own
    by id, a catalog image as 'name:kind'."""
    return inst.image if inst.image.startswith("ami-") else f"{inst.image}:{inst.kind}"


class RootSnapshots:
    """Mixed into Cloud through SnapshotUseCases; uses its drivers, locks, journal and store."""

    def snapshot_root_volume(self, caller, vol: Volume, description: str, tags: dict, *, sid: str | None = None,
                             instance=None):
        """The root volume's copy as it is now (the instance running or stopped); done when this
        returns. SID: an id chosen by the caller beforehand (CreateImage records it first)."""
        inst = instance or self._row(vol.instance_id)
        if inst is None or not inst.engine_id or inst.state not in ("running", "stopped"):
            state = inst.state if inst is not None else "gone"
            raise InvalidState(f"Volume '{vol.id}' is the root of {vol.instance_id}, which is {state}: a root is "
                               "copied while its instance is running or stopped", code="IncorrectState")
        sid = self._insert_snapshot(caller, vol.id, vol.size_gib, description, root_kind=inst.kind,
                                    source_image=source_image_of(inst), sid=sid)
        try:
            ref, stored = self.driver(inst.kind).snapshot_root(inst.engine_id, inst.id, sid, self.snapshot_file(sid))
            self.fault("engine", op="root-snapshot")  # the copy made, its record still pending
            self._finish_snapshot(sid, tags, stored, ref)
        except BaseException:
            self._drop_snapshot(sid)
            raise
        return self.describe_snapshots(caller, [sid])[0]

    def drop_root_image(self, sid: str, engine_ref: str) -> None:
        """Remove a container root snapshot's Docker image; one whose name was not recorded yet
        (the server died, or the commit failed, right after making it) is found by its label."""
        driver = self.drivers.get("container")
        if driver is None:
            return
        refs = {engine_ref} if engine_ref else set()
        refs.add(driver.root_snapshots().get(sid, ""))
        for ref in refs - {""}:
            driver.remove_root_snapshot(ref)
        self.sweep_other_forms()  # an image's container form this snapshot was layered on

    def refuse_snapshot_in_use(self, snap) -> None:
        """AWS keeps a snapshot an image is registered from: deregister the image first."""
        row = self.store.one("SELECT id FROM amis WHERE snapshot_id=? ORDER BY created_at", (snap.id,))
        if row is not None:
            raise InvalidState(f"The snapshot {snap.id} is currently in use by {row['id']}",
                               code="InvalidSnapshot.InUse")

    def reconcile_snapshots(self) -> list[str]:
        """Roll back what a dead server left pending (its files, its Docker images), and remove
        this cloud's snapshot images no snapshot record names."""
        report: list[str] = []
        for r in self.store.query("SELECT id FROM snapshots WHERE state='pending' AND boot_id!=?",
                                  (self.journal.boot_id,)):
            with self._locks.hold(r["id"]):
                try:
                    self._drop_snapshot(r["id"])
                    report.append(f"{r['id']}: pending snapshot rolled back")
                except CloudError as e:
                    log.warning("reconcile: snapshot %s not rolled back yet: %s", r["id"], e)
        driver = self.drivers.get("container")
        if driver is None or not driver.available()[0]:
            return report
        found = driver.root_snapshots()  # before the records: a snapshot's record is made before its image
        known = {r["id"] for r in self.store.query("SELECT id FROM snapshots")}
        for sid, ref in found.items():
            if sid not in known:
                try:
                    driver.remove_root_snapshot(ref)
                except CloudError as e:  # an instance launched from it still runs: its container holds it
                    log.info("reconcile: snapshot image %s stays for now: %s", ref, e)
                    continue
                report.append(f"{sid}: snapshot image {ref} without a record removed")
        return report
