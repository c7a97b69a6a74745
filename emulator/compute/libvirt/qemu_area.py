"""Where a cloud's VM files live so that an unprivileged QEMU can reach them.

QEMU runs as Debian's `libvirt-qemu`, labelled by libvirt's DAC driver (it chowns each
domain's overlay, seed, console log, kernel and initrd to that user while the domain runs).
A file it is given must also be reachable: every directory above it searchable by that
user. The default home (`~/.pocketcloud` under a 0700 `/root`) and pytest's temporary
homes are not, so each cloud gets its own area ROOT/<cloud label>/ (ROOT is
/var/lib/pocketcloud), 0750 root:libvirt-qemu, holding

  instances/<iid>/   overlay, seed, console log of each instance (see driver.py)
  images/<key>/      hard links (copies across file systems) of the image files a domain
                     boots from: kernel, initrd and the read-only base disk
  probe/             the KVM probe's console logs
  volumes/           the cloud's libvirt storage pool: one qcow2 file per EBS-style volume
  snapshots/         the volumes' snapshots (a VM's backup is written by QEMU itself)

The instance part lives while the cloud has VMs: the last instance's removal takes it
(`release`), the next launch makes it again (hard links are cheap); the area itself stays
while it holds volumes or snapshots. `remove` takes whatever is left with the cloud's other
engine objects. When the server does not
run as root (or the user does not exist) nothing is chowned and QEMU runs as the server's
own user, with the area under the cloud's home as before.
"""
from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/pocketcloud")
DEFAULT_USER = "libvirt-qemu"
IMAGE_FILES = ("kernel", "initrd", "disk")


@dataclass(frozen=True)
class QemuUser:
    name: str
    uid: int
    gid: int  # the group the area belongs to and QEMU runs with

    @property
    def label(self) -> str:
        """libvirt's DAC label: numeric, so libvirt does not look the names up again."""
        return f"+{self.uid}:+{self.gid}"


def qemu_user(name: str = DEFAULT_USER) -> QemuUser | None:
    """The unprivileged user QEMU runs as; None when this process cannot hand files to
    another user (not root) or the user does not exist (then QEMU runs as this process)."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    try:
        gid = grp.getgrnam(name).gr_gid  # Debian's libvirt-qemu has a group of its own name
    except KeyError:
        gid = pw.pw_gid
    return QemuUser(name, pw.pw_uid, gid)


class QemuArea:
    def __init__(self, root: Path, user: QemuUser | None):
        self.root = root
        self.user = user
        self._lock = threading.Lock()  # a launch making the area and a removal taking it

    @classmethod
    def for_cloud(cls, cloud_label: str, fallback: Path, *, root: Path | None = None,
                  user_name: str = DEFAULT_USER) -> "QemuArea":
        user = qemu_user(user_name)
        if user is None:
            return cls(fallback, None)
        return cls((root or DEFAULT_ROOT) / cloud_label, user)

    @property
    def instances(self) -> Path:
        return self.root / "instances"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    def ensure(self, *subdirs: str) -> Path:
        """Create the area (and SUBDIRS, nested) readable by QEMU's group only; the top
        directory lets QEMU pass through without listing the other clouds' areas."""
        if self.user is not None:
            self._mkdir(self.root.parent, 0o711, 0)
        path = self._mkdir(self.root, 0o750)
        for name in subdirs:
            path = self._mkdir(path / name, 0o750)
        return path

    def claim(self, instance_id: str, vm: dict) -> tuple[dict, Path]:
        """The image staged (see stage_image) and a fresh instance directory, together, so the
        area cannot go in between. FileExistsError if the directory exists: it is another's."""
        with self._lock:
            return self.stage_image(vm), self.new_instance_dir(instance_id)

    def release(self, instance_id: str) -> None:
        """Remove an instance's directory, and the whole area once no instance (or KVM probe)
        needs it."""
        with self._lock:
            shutil.rmtree(self.instances / instance_id, ignore_errors=True)
            self._remove_if_unused()

    def tidy(self) -> None:
        """Remove the area if nothing needs it (after a KVM probe, which stages its kernel)."""
        with self._lock:
            self._remove_if_unused()

    def _remove_if_unused(self) -> None:
        if self.user is None:
            return
        try:
            if any(self.instances.iterdir()) or any((self.root / "probe").glob("*")):
                return
        except FileNotFoundError:
            pass
        for name in ("instances", "images", "probe"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        try:
            self.root.rmdir()  # kept while volumes or snapshots live in it
        except OSError:
            pass

    def new_instance_dir(self, instance_id: str) -> Path:
        """A fresh instance directory (FileExistsError if there is one: it is another's)."""
        path = self.ensure("instances") / instance_id
        path.mkdir(mode=0o750)
        if self.user is not None:
            os.chown(path, 0, self.user.gid)
        return path

    def _mkdir(self, path: Path, mode: int, gid: int | None = None) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(path, 0, self.user.gid if gid is None else gid)
            os.chmod(path, mode)
        return path

    def stage_image(self, vm: dict) -> dict:
        """VM (a loaded vm.json) with its kernel, initrd and disk replaced by files inside the
        area. Hard links cost nothing; a copy is made across file systems, or when the file
        is not readable by others (a hard link shares the inode and its mode)."""
        if self.user is None:
            return vm
        key = hashlib.sha256(str(Path(vm["dir"]).resolve()).encode()).hexdigest()[:16]
        dest = self.ensure("images", key)
        out = dict(vm)
        for field in IMAGE_FILES:
            src = vm.get(field)
            if src is None:
                continue
            target = dest / Path(src).name
            out[field] = target
            st = os.stat(src)
            try:
                if os.stat(target).st_ino == st.st_ino or _same_copy(target, st):
                    continue
                target.unlink()
            except FileNotFoundError:
                pass
            tmp = target.with_name(f".{target.name}.{os.getpid()}")
            try:
                if st.st_mode & 0o004:
                    os.link(src, tmp)
                else:
                    raise OSError("not readable by others")
            except OSError:
                shutil.copyfile(src, tmp)
                os.chown(tmp, 0, self.user.gid)
                os.chmod(tmp, 0o640)
                os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.replace(tmp, target)  # two launches staging at once both end with a whole file
        return out

    def remove(self) -> None:
        """The whole area (call once the cloud's domains are gone)."""
        if self.user is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            for name in ("instances", "images", "probe"):
                shutil.rmtree(self.root / name, ignore_errors=True)

    def describe(self) -> dict:
        return {"dir": str(self.root), "user": self.user.name if self.user else None,
                "label": self.user.label if self.user else None}


def _same_copy(target: Path, st: os.stat_result) -> bool:
    t = os.stat(target)
    return t.st_size == st.st_size and t.st_mtime_ns == st.st_mtime_ns
