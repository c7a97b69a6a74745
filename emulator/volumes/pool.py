"""Where volumes live on the host: one libvirt storage pool (a directory) per cloud, one qcow2
file per volume, named after the volume id.

A libvirt pool rather than hand-made files, so that `virsh vol-list` shows a student the same
disks the API does, and so that a VM attaches a pool volume like any other libvirt disk. The
pool is defined on first use and found again by name after a restart; the files are sparse,
so what a volume costs the host is its allocation, not its size (the capacity check weighs
both: see service.py).
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Callable
from xml.sax.saxutils import escape

from ..compute.libvirt.conn import Connection, engine_errors, is_libvirt_error, libvirt
from ..errors import InvalidParameter, NotFound
from . import VOLUME_ID


class VolumePool:
    def __init__(self, uri: str, cloud_label: str, path: str | Path,
                 prepare: Callable[[], object] | None = None):
        """PATH is the pool's directory; PREPARE makes it (and the directories above it) so
        that QEMU reaches the files, see QemuArea.ensure; by default a 0711 directory."""
        self.name = f"pocketcloud-{cloud_label}-volumes"
        self.path = Path(path).resolve()
        self._prepare = prepare or self._make_dir
        self._conn = Connection(uri)
        self._lock = threading.Lock()

    def _pool(self):
        """The pool, defined and started if it is not (first use, or libvirtd lost it)."""
        conn = self._conn.get()
        with self._lock, engine_errors(f"storage pool {self.name}"):
            try:
                pool = conn.storagePoolLookupByName(self.name)
            except Exception as e:
                if not is_libvirt_error(e, libvirt.VIR_ERR_NO_STORAGE_POOL):
                    raise
                self._prepare()
                pool = conn.storagePoolDefineXML(
                    f"<pool type='dir'><name>{escape(self.name)}</name>"
                    f"<target><path>{escape(str(self.path))}</path></target></pool>", 0)
            if not pool.isActive():
                self._prepare()
                pool.create(0)
            elif not self.path.is_dir():  # the directory went while libvirt was not looking
                self._prepare()
                pool.refresh(0)
            return pool

    def _make_dir(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.path.chmod(0o711)  # qemu (running as this uid) reaches its files; others cannot list them

    @staticmethod
    def _check(volume_id: str) -> str:
        if not isinstance(volume_id, str) or not VOLUME_ID.fullmatch(volume_id):
            raise InvalidParameter(f"invalid volume id {str(volume_id)[:40]!r}", code="InvalidVolumeID.Malformed")
        return volume_id + ".qcow2"

    def file(self, volume_id: str) -> Path:
        return self.path / self._check(volume_id)

    def create(self, volume_id: str, size_bytes: int) -> Path:
        name = self._check(volume_id)
        pool = self._pool()
        with engine_errors(f"create volume {volume_id}"):
            pool.createXML(f"<volume><name>{name}</name><capacity unit='bytes'>{int(size_bytes)}</capacity>"
                           "<allocation>0</allocation><target><format type='qcow2'/>"
                           "<permissions><mode>0600</mode></permissions></target></volume>", 0)
        return self.path / name

    def _vol(self, volume_id: str):
        name = self._check(volume_id)
        pool = self._pool()
        try:
            return pool.storageVolLookupByName(name)
        except Exception as e:
            if is_libvirt_error(e, libvirt.VIR_ERR_NO_STORAGE_VOL):
                if (self.path / name).exists():  # made while libvirt was not looking: see it now
                    with engine_errors(f"storage pool {self.name}"):
                        pool.refresh(0)
                        return pool.storageVolLookupByName(name)
                raise NotFound(f"volume {volume_id} has no file in {self.path}") from None
            with engine_errors(f"volume {volume_id}"):
                raise

    def delete(self, volume_id: str) -> None:
        """Remove the volume's file; a file already gone is not an error (a retried delete)."""
        try:
            vol = self._vol(volume_id)
        except NotFound:
            return
        with engine_errors(f"delete volume {volume_id}"):
            vol.delete(0)

    def grow(self, volume_id: str, size_bytes: int) -> None:
        """A detached volume's new size (qemu-img resize through libvirt); an attached one grows
        through its domain instead, so that the guest is told."""
        vol = self._vol(volume_id)
        with engine_errors(f"resize volume {volume_id}"):
            vol.resize(int(size_bytes), 0)

    def allocated(self, volume_id: str) -> int:
        """Bytes the volume's file really takes on the host (it is sparse)."""
        try:
            return os.stat(self.file(volume_id)).st_blocks * 512
        except FileNotFoundError:
            return 0

    def free_bytes(self) -> int:
        where = self.path
        while not where.exists():  # the pool is made on first use; its file system is known now
            where = where.parent
        return shutil.disk_usage(where).free

    def files(self) -> list[str]:
        """Volume ids that have a file here (for reconcile and the leak check)."""
        if not self.path.exists():
            return []
        return sorted(p.stem for p in self.path.glob("vol-*.qcow2") if VOLUME_ID.fullmatch(p.stem))

    def describe(self) -> dict:
        return {"pool": self.name, "type": "dir", "path": str(self.path), "format": "qcow2"}

    def remove(self) -> None:
        """Stop and forget the pool (its files stay: they are the volumes)."""
        conn = self._conn.get()
        try:
            pool = conn.storagePoolLookupByName(self.name)
        except Exception as e:
            if is_libvirt_error(e, libvirt.VIR_ERR_NO_STORAGE_POOL):
                return
            with engine_errors(f"storage pool {self.name}"):
                raise
        with engine_errors(f"remove storage pool {self.name}"):
            if pool.isActive():
                pool.destroy()
            pool.undefine()
