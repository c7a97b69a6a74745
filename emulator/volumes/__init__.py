"""Volume records: the root device of every instance, and the volumes an account creates.

Each instance gets one `vol-…` record for its root device (a VM's qcow2 overlay, a container's
writable layer), sized from its image, attached at the image's root device name, deleted with
the instance (`DeleteOnTermination` true, as AWS's default for root volumes); those records
(`root`) keep the ids they were given when EC2 first described them. Volumes of their own
(`CreateVolume`) are files in the cloud's storage pool (pool.py); their use cases are in
service.py.
"""
from __future__ import annotations

import math
import re
import secrets
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from ..state import Store
from ..validation import by_ids

VOLUME_ID = re.compile(r"vol-[0-9a-f]{17}")
GIB = 1024 ** 3
# Where the root device is attached: a VM's virtio disk; a container has no block device, its
# root is the filesystem itself (the images name it the same way).
ROOT_DEVICE = {"vm": "/dev/vda", "container": "/"}
# gp3's baseline, what AWS reports for a gp3 volume created without explicit figures.
GP3 = {"type": "gp3", "iops": 3000, "throughput": 125}


@dataclass(frozen=True)
class Volume:
    id: str
    owner: str
    instance_id: str | None
    zone_suffix: str
    size_gib: int
    volume_type: str
    iops: int
    throughput: int
    device: str | None
    delete_on_termination: bool
    created_at: float
    root: bool = True
    state: str = "in-use"           # a root volume's follows its instance: in-use while it lives
    snapshot_id: str = ""
    attached_at: float | None = None
    guest_device: str | None = None  # where the instance's engine put it (/dev/vdc), when attached

    def zone(self, region: str) -> str:
        return region + self.zone_suffix


def qcow2_virtual_size(path: Path) -> int | None:
    """The disk size a guest sees (bytes 24-31 of the qcow2 header), without qemu-img."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return None
    if len(head) < 32 or head[:4] != b"QFI\xfb":
        return None
    return struct.unpack(">Q", head[24:32])[0]


def root_size_gib(kind: str, ref: str, details: dict, image_bytes: int | None) -> int:
    """A VM's root volume is as large as its image's disk; a container's is its image rounded
    up to whole GiB (its writable layer has no size of its own)."""
    size = None
    if kind == "vm" and details.get("disk"):
        size = qcow2_virtual_size(Path(ref) / details["disk"])
    if size is None:
        size = image_bytes or 0
    return max(1, math.ceil(size / GIB))


def new_volume_id() -> str:
    return "vol-" + secrets.token_hex(9)[:17]


class Volumes:
    def __init__(self, store: Store):
        self.store = store

    @staticmethod
    def _row(r) -> Volume:
        return Volume(r["id"], r["owner"], r["instance_id"], r["zone_suffix"], r["size_gib"], r["volume_type"],
                      r["iops"], r["throughput"], r["device"], bool(r["delete_on_termination"]), r["created_at"],
                      bool(r["root"]), r["state"], r["snapshot_id"], r["attached_at"], r["guest_device"])

    def ensure_roots(self, owner: str, wanted: list[tuple[str, str, str, int]]) -> None:
        """(instance id, zone suffix, device, size GiB) for instances that need a root volume
        record; existing ones are kept as they are (ids never change)."""
        if not wanted:
            return
        now = time.time()
        with self.store.tx() as c:
            for iid, zone_suffix, device, size in wanted:
                c.execute("INSERT OR IGNORE INTO volumes (id, owner, instance_id, zone_suffix, size_gib, volume_type,"
                          " iops, throughput, device, delete_on_termination, created_at, attached_at)"
                          " VALUES (?,?,?,?,?,?,?,?,?,1,?,?)",
                          (new_volume_id(), owner, iid, zone_suffix, size, GP3["type"],
                           GP3["iops"], GP3["throughput"], device, now, now))

    def list(self, owner: str, ids: list[str] | None = None) -> list[Volume]:
        rows = [self._row(r) for r in self.store.query(
            "SELECT * FROM volumes WHERE owner=? ORDER BY created_at", (owner,))]
        return by_ids(rows, ids, VOLUME_ID, "vol", "volume", ("InvalidVolumeID", "InvalidVolume.NotFound"))

    def for_instances(self, owner: str, instance_ids: list[str]) -> dict[str, list[Volume]]:
        out: dict[str, list[Volume]] = {}
        if not instance_ids:
            return out
        for r in self.store.query(f"SELECT * FROM volumes WHERE owner=? AND instance_id IN "
                                  f"({','.join('?' * len(instance_ids))}) ORDER BY created_at",
                                  (owner, *instance_ids)):
            out.setdefault(r["instance_id"], []).append(self._row(r))
        return out

    # -- volumes of their own (root = 0) -----------------------------------------------------------
    def get(self, owner: str, volume_id: str) -> Volume:
        """One of the account's volumes (another account's answers like a missing one)."""
        return self.list(owner, [volume_id])[0]

    def data(self, owner: str | None = None) -> list[Volume]:
        """Created volumes (not root records): an account's, or every account's (capacity)."""
        sql, args = "SELECT * FROM volumes WHERE root=0", ()
        if owner is not None:
            sql, args = sql + " AND owner=?", (owner,)
        return [self._row(r) for r in self.store.query(sql + " ORDER BY created_at", args)]

    def insert(self, owner: str, zone_suffix: str, size_gib: int, iops: int, throughput: int,
               snapshot_id: str = "", volume_id: str | None = None) -> Volume:
        vid = volume_id or new_volume_id()
        with self.store.tx() as c:
            c.execute("INSERT INTO volumes (id, owner, instance_id, zone_suffix, size_gib, volume_type, iops, throughput,"
                      " device, delete_on_termination, created_at, root, state, snapshot_id)"
                      " VALUES (?,?,NULL,?,?,?,?,?,NULL,0,?,0,'creating',?)",
                      (vid, owner, zone_suffix, size_gib, GP3["type"], iops, throughput, time.time(), snapshot_id))
        return self.get(owner, vid)

    def update(self, volume_id: str, **fields) -> None:
        allowed = {"state", "size_gib", "iops", "throughput", "instance_id", "device", "delete_on_termination",
                   "attached_at", "guest_device"}
        assert fields and set(fields) <= allowed, fields
        with self.store.tx() as c:
            c.execute(f"UPDATE volumes SET {', '.join(k + '=?' for k in fields)} WHERE id=?",
                      (*fields.values(), volume_id))

    def attached_to(self, instance_id: str) -> list[Volume]:
        """The volumes of their own attached to (or attaching to) an instance."""
        return [self._row(r) for r in self.store.query(
            "SELECT * FROM volumes WHERE root=0 AND instance_id=? ORDER BY attached_at", (instance_id,))]

    def remove(self, volume_id: str) -> None:
        with self.store.tx() as c:
            c.execute("DELETE FROM volumes WHERE id=? AND root=0", (volume_id,))
