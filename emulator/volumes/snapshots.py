"""Snapshots (block storage, issue 15): point-in-time copies of volumes, kept apart from them.

A snapshot is a qcow2 file of its own in the cloud's QEMU area (snapshots/), so deleting its volume
keeps it. It is taken crash-consistent whatever the volume is doing: a detached volume is
copied by `qemu-img convert` (nothing writes to it); a VM's disk by a libvirt push backup
(QEMU copies the disk as it was when the backup began while the guest goes on writing); a
container's by freezing its filesystem on the host while it is copied. Only written
clusters are copied, so a snapshot stores what the volume holds, not its size (that is
what it bills). A volume made from a snapshot is a full copy in the pool (no backing chain:
deleting the snapshot later never breaks the volume).
"""
from __future__ import annotations

import re
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import EngineError, InvalidParameter, InvalidState
from ..validation import by_ids, tags as clean_tags
from . import GIB
from .attach import serial_of
from .root_snapshots import RootSnapshots

SNAPSHOT_ID = re.compile(r"snap-[0-9a-f]{17}")
MAX_DESCRIPTION = 255


def new_snapshot_id() -> str:
    return "snap-" + secrets.token_hex(9)[:17]


@dataclass(frozen=True)
class Snapshot:
    id: str
    owner: str
    volume_id: str
    volume_size: int
    state: str
    description: str
    source_snapshot_id: str
    stored_bytes: int
    created_at: float
    root_kind: str = ""   # a root volume's copy: 'vm' (a qcow2 file like any) or 'container' (an image)
    engine_ref: str = ""  # the Docker image of a container root's snapshot
    source_image: str = ""  # a root's: the image its instance ran (catalog 'name:kind', or an ami- id)


def qemu_img_output(args: list[str], what: str, timeout: float = 3600) -> str:
    try:
        res = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise EngineError(f"{what}: qemu-img is not installed") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"{what}: qemu-img did not finish within {timeout:.0f}s") from None
    if res.returncode != 0:
        raise EngineError(f"{what}: qemu-img {args[0]}: {res.stderr.strip()[-400:]}")
    return res.stdout


def qemu_img(args: list[str], what: str, timeout: float = 3600) -> None:
    qemu_img_output(args, what, timeout)


def allocated(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512
    except FileNotFoundError:
        return 0


class SnapshotUseCases(RootSnapshots):
    """Mixed into Cloud through VolumeUseCases; uses its store, volumes, pool and drivers.
    Root volumes' snapshots are root_snapshots.py's."""

    @property
    def snapshot_dir(self) -> Path:
        return self.volume_area.ensure("snapshots")

    def snapshot_file(self, snapshot_id: str) -> Path:
        if not SNAPSHOT_ID.fullmatch(snapshot_id):
            raise InvalidParameter(f"invalid snapshot id {snapshot_id[:40]!r}", code="InvalidSnapshotID.Malformed")
        return self.snapshot_dir / f"{snapshot_id}.qcow2"

    @staticmethod
    def _snap(r) -> Snapshot:
        return Snapshot(r["id"], r["owner"], r["volume_id"], r["volume_size"], r["state"], r["description"],
                        r["source_snapshot_id"], r["stored_bytes"], r["created_at"], r["root_kind"], r["engine_ref"], r["source_image"])

    def describe_snapshots(self, caller, ids: list[str] | None = None) -> list[Snapshot]:
        rows = [self._snap(r) for r in self.store.query(
            "SELECT * FROM snapshots WHERE owner=? ORDER BY created_at, id", (caller.id,))]
        return by_ids(rows, ids, SNAPSHOT_ID, "snap", "snapshot", ("InvalidSnapshotID", "InvalidSnapshot.NotFound"))

    def all_snapshots(self) -> list[Snapshot]:
        return [self._snap(r) for r in self.store.query("SELECT * FROM snapshots ORDER BY created_at")]

    @staticmethod
    def _description(value) -> str:
        if value is None:
            return ""
        if not isinstance(value, str) or len(value) > MAX_DESCRIPTION or any(ord(c) < 32 for c in value):
            raise InvalidParameter(f"Description must be at most {MAX_DESCRIPTION} printable characters",
                                   code="InvalidParameterValue")
        return value

    def _insert_snapshot(self, caller, volume_id: str, size: int, description: str, source: str = "",
                         root_kind: str = "", source_image: str = "", sid: str | None = None) -> str:
        sid = sid or new_snapshot_id()
        with self.store.tx() as c:
            c.execute("INSERT INTO snapshots (id, owner, volume_id, volume_size, state, description, source_snapshot_id,"
                      " created_at, root_kind, source_image, boot_id) VALUES (?,?,?,?,'pending',?,?,?,?,?,?)",
                      (sid, caller.id, volume_id, size, description, source, time.time(), root_kind, source_image,
                       self.journal.boot_id))
        return sid

    def _finish_snapshot(self, sid: str, tags: dict, stored: int | None = None, engine_ref: str = "") -> None:
        with self.store.tx() as c:
            c.execute("UPDATE snapshots SET state='completed', stored_bytes=?, engine_ref=? WHERE id=?",
                      (allocated(self.snapshot_file(sid)) if stored is None else stored, engine_ref, sid))
        if tags:
            self.resource_tags.set(self.store.one("SELECT owner FROM snapshots WHERE id=?", (sid,))["owner"],
                                   [sid], tags)

    def _drop_snapshot(self, sid: str) -> None:
        row = self.store.one("SELECT root_kind, engine_ref FROM snapshots WHERE id=?", (sid,))
        if row is not None and row["root_kind"] == "container":  # its image first: never an untracked one
            self.drop_root_image(sid, row["engine_ref"])
        self.snapshot_file(sid).unlink(missing_ok=True)
        with self.store.tx() as c:
            c.execute("DELETE FROM snapshots WHERE id=?", (sid,))
        self.resource_tags.forget([sid])

    def create_snapshot(self, caller, volume_id: str, *, description=None, tags: dict | None = None) -> Snapshot:
        """A crash-consistent copy of the volume as it is now; done when this returns."""
        description, clean = self._description(description), clean_tags(tags)
        vol = self._own_volume(caller, volume_id)
        if vol.root:
            return self.snapshot_root_volume(caller, vol, description, clean)
        with self._locks.hold(vol.id):
            vol = self.volumes.get(caller.id, vol.id)
            if vol.state not in ("available", "in-use"):
                raise InvalidState(f"Volume '{vol.id}' is in the '{vol.state}' state.", code="IncorrectState")
            sid = self._insert_snapshot(caller, vol.id, vol.size_gib, description)
            target = self.snapshot_file(sid)
            try:
                inst = self._row(vol.instance_id) if vol.instance_id else None
                copied = False
                if inst is not None and inst.engine_id and inst.state != "terminated":
                    copied = self.driver(inst.kind).snapshot_volume(inst.engine_id, inst.id, serial_of(vol.id),
                                                                    vol.device, self.volume_pool.file(vol.id), target)
                if not copied:  # nothing runs with it: the file itself is the point in time
                    qemu_img(["convert", "-O", "qcow2", str(self.volume_pool.file(vol.id)), str(target)],
                             f"snapshot {vol.id}")
                self._finish_snapshot(sid, clean)
            except BaseException:
                self._drop_snapshot(sid)
                raise
        return self.describe_snapshots(caller, [sid])[0]

    def copy_snapshot(self, caller, source_id: str, *, description=None, tags: dict | None = None) -> Snapshot:
        description, clean = self._description(description), clean_tags(tags)
        src = self.describe_snapshots(caller, [source_id])[0]
        if src.state != "completed":
            raise InvalidState(f"Snapshot '{src.id}' is {src.state}", code="IncorrectState")
        refuse_container_root(src, "copied")
        sid = self._insert_snapshot(caller, src.volume_id, src.volume_size,
                                    description or f"Copied for DestinationSnapshot from {src.id}", src.id,
                                    src.root_kind, src.source_image)
        try:
            qemu_img(["convert", "-O", "qcow2", str(self.snapshot_file(src.id)), str(self.snapshot_file(sid))],
                     f"copy {src.id}")
            self._finish_snapshot(sid, clean)
        except BaseException:
            self._drop_snapshot(sid)
            raise
        return self.describe_snapshots(caller, [sid])[0]

    def delete_snapshot(self, caller, snapshot_id: str) -> None:
        snap = self.describe_snapshots(caller, [snapshot_id])[0]
        with self._locks.hold(snap.id):
            self.refuse_snapshot_in_use(snap)
            self._drop_snapshot(snap.id)

    def fill_from_snapshot(self, caller, snapshot_id: str, volume_id: str) -> None:
        """Write a completed snapshot's data into a new (empty, as large or larger) volume."""
        snap = self.describe_snapshots(caller, [snapshot_id])[0]
        qemu_img(["convert", "-n", "-O", "qcow2", str(self.snapshot_file(snap.id)),
                  str(self.volume_pool.file(volume_id))], f"restore {snap.id}")

    def snapshot_for_volume(self, caller, snapshot_id: str, size_gib) -> tuple[str, int]:
        """(snapshot id, size): the size defaults to the snapshot's, and may not be smaller."""
        snap = self.describe_snapshots(caller, [snapshot_id])[0]
        if snap.state != "completed":
            raise InvalidState(f"Snapshot '{snap.id}' is {snap.state}", code="IncorrectState")
        refuse_container_root(snap, "made into a volume (register an image from it: RegisterImage)")
        if size_gib is None:
            return snap.id, snap.volume_size
        if isinstance(size_gib, int) and not isinstance(size_gib, bool) and size_gib < snap.volume_size:
            raise InvalidParameter(f"Volume of {size_gib} GiB is smaller than snapshot {snap.id}, "
                                   f"expect size >= {snap.volume_size}", code="InvalidParameterValue")
        return snap.id, size_gib

    def snapshot_bytes(self, snap: Snapshot) -> int:
        return snap.stored_bytes or allocated(self.snapshot_file(snap.id))


def refuse_container_root(snap: Snapshot, what: str) -> None:
    """A container root's snapshot is a Docker image (a filesystem, no block device): it makes
    images, never disks."""
    if snap.root_kind == "container":
        raise InvalidParameter(f"{snap.id} is the root of a container, kept as a Docker image, not a disk: "
                               f"it cannot be {what}", code="UnsupportedOperation")


def snapshot_gib(snap: Snapshot) -> float:
    return round(snap.stored_bytes / GIB, 6)

