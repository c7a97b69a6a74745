"""A volume for a container: the host mounts the volume's filesystem, the container sees it.

A container shares the host's kernel, so it gets no block device of its own: the host opens
the volume's qcow2 with `qemu-storage-daemon` (exported as a raw image file over FUSE; this
kernel has no nbd module), mounts the filesystem in it through a loop device, and the
container sees that mount. Docker cannot add a mount to a running container, so every
container is created with one bind mount of its own directory under ROOT at /volumes, with
`rslave` propagation from ROOT, which is a shared mount: what the host mounts there later
(ROOT/<instance>/<sdf>) appears in the running container at /volumes/sdf, and disappears at
unmount. A blank volume is formatted ext4 at its first attach to a container (a VM formats
its own); a volume holding data that is no filesystem is refused, never formatted.

The daemons outlive the server (like the mounts, which are the kernel's); each one's pidfile
is RUN/<serial>.pid, so a restarted server and the leak check find them.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from ..errors import EngineError, InvalidParameter, InvalidState

NAME = re.compile(r"[a-z0-9]{1,20}")
TARGET = "/volumes"
# Sharing ROOT is check-then-mount: two launches at once (Terraform's for_each) both found it
# unshared and stacked two binds, the lower one private, and dockerd refused the containers.
_SHARE_LOCK = threading.Lock()


def _run(cmd: list[str], what: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise EngineError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"{what}: {cmd[0]} did not finish within {timeout:.0f}s") from None
    return res


def mountpoints(pid: int | str = "self") -> dict[str, str]:
    """mount point -> source of every mount a process sees (its /proc/PID/mountinfo, in its own
    mount namespace; octal escapes undone)."""
    out = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        parts = line.split(" ")
        sep = parts.index("-")
        out[parts[4].encode().decode("unicode_escape")] = parts[sep + 2]
    return out


class HostMounts:
    def __init__(self, root: str | Path, run: str | Path):
        self.root = Path(root).resolve()
        self.run = Path(run).resolve()

    @staticmethod
    def _name(value: str) -> str:
        if not isinstance(value, str) or not NAME.fullmatch(value):
            raise InvalidParameter(f"invalid name {str(value)[:30]!r}")
        return value

    def ensure_shared(self) -> bool:
        """ROOT as a shared mount of its own, so mounts under it propagate into containers;
        True when it was not (a fresh cloud, or a host that rebooted)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.run.mkdir(parents=True, exist_ok=True)
        with _SHARE_LOCK:
            if str(self.root) in mountpoints():
                return False
            for cmd in (["mount", "--bind", str(self.root), str(self.root)],
                        ["mount", "--make-rshared", str(self.root)]):
                res = _run(cmd, "share the volume mounts")
                if res.returncode != 0:
                    raise EngineError(f"share the volume mounts: {' '.join(cmd)}: {res.stderr.strip()[-300:]}")
            return True

    def instance_dir(self, instance_id: str) -> Path:
        """The host directory a container sees at /volumes (made before the container)."""
        self.ensure_shared()
        d = self.root / self._name(instance_id.replace("-", ""))
        d.mkdir(exist_ok=True)
        return d

    def _raw(self, serial: str) -> Path:
        return self.run / f"{self._name(serial)}.raw"

    def _pidfile(self, serial: str) -> Path:
        return self.run / f"{self._name(serial)}.pid"

    def mount(self, serial: str, qcow2: Path, instance_id: str, name: str) -> str:
        """Mount the volume at ROOT/<instance>/<name>; returns the path the container sees."""
        target = self.instance_dir(instance_id) / self._name(name)
        if str(target) in mountpoints():
            return f"{TARGET}/{name}"
        raw = self._export(serial, qcow2)
        try:
            self._format_if_blank(raw)
            target.mkdir(exist_ok=True)
            res = _run(["mount", "-o", "loop", str(raw), str(target)], "mount the volume")
            if res.returncode != 0:
                raise EngineError(f"mount the volume: {res.stderr.strip()[-300:]}")
        except BaseException:
            self._stop_export(serial)
            if target.exists() and str(target) not in mountpoints():
                target.rmdir()
            raise
        return f"{TARGET}/{name}"

    def _export(self, serial: str, qcow2: Path) -> Path:
        raw, pidfile = self._raw(serial), self._pidfile(serial)
        self._stop_export(serial)
        raw.touch(mode=0o600)
        # Options as qemu's key=value syntax: the paths are ours (ids), never a comma in them.
        res = _run(["qemu-storage-daemon",
                    "--blockdev", f"driver=file,node-name=f,filename={qcow2}",
                    "--blockdev", "driver=qcow2,node-name=q,file=f",
                    "--export", f"type=fuse,id=e,node-name=q,mountpoint={raw},writable=on",
                    "--pidfile", str(pidfile), "--daemonize"], "export the volume")
        if res.returncode != 0:
            raw.unlink(missing_ok=True)
            raise EngineError(f"export the volume: qemu-storage-daemon: {res.stderr.strip()[-300:]}")
        return raw

    @staticmethod
    def _format_if_blank(raw: Path) -> None:
        found = _run(["blkid", "-p", "-o", "value", "-s", "TYPE", str(raw)], "look at the volume")
        if found.returncode == 0 and found.stdout.strip():
            return
        with open(raw, "rb") as f:
            head = f.read(1 << 20)
        if head.strip(b"\x00"):
            raise InvalidState("the volume holds data but no filesystem the host can mount (a VM wrote it raw?): "
                               "a container sees volumes through a filesystem; format it ext4 first",
                               code="IncorrectState")
        res = _run(["mkfs.ext4", "-q", "-F", "-L", "volume", str(raw)], "format the volume", timeout=300)
        if res.returncode != 0:
            raise EngineError(f"format the volume: {res.stderr.strip()[-300:]}")

    def unmount(self, serial: str, instance_id: str, name: str) -> None:
        """Take the volume out of the container and stop its export; a busy filesystem (a
        process inside still uses it) is refused and stays."""
        target = self.root / self._name(instance_id.replace("-", "")) / self._name(name)
        if str(target) in mountpoints():
            res = _run(["umount", str(target)], "unmount the volume")
            if res.returncode != 0:
                raise InvalidState(f"the volume is busy inside the container ({res.stderr.strip()[-200:]}): "
                                   "stop what uses /volumes/" + name + " first", code="VolumeInUse")
        if target.exists():
            target.rmdir()
        self._stop_export(serial)

    def snapshot(self, serial: str, instance_id: str, name: str, source: Path, target: Path) -> bool:
        """Copy a mounted volume while its filesystem is frozen (writers inside wait, the
        freeze flushes it through the export to the qcow2); False when it is not mounted."""
        mp = self.root / self._name(instance_id.replace("-", "")) / self._name(name)
        if str(mp) not in mountpoints():
            return False
        res = _run(["fsfreeze", "--freeze", str(mp)], "freeze the volume")
        if res.returncode != 0:
            raise EngineError(f"freeze the volume: {res.stderr.strip()[-300:]}")
        try:
            # -U: the export holds the image open; frozen and flushed, it changes nothing meanwhile
            copy = _run(["qemu-img", "convert", "-U", "-O", "qcow2", str(source), str(target)], "copy the volume",
                        timeout=3600)
        finally:
            _run(["fsfreeze", "--unfreeze", str(mp)], "unfreeze the volume")
        if copy.returncode != 0:
            raise EngineError(f"copy the volume: qemu-img: {copy.stderr.strip()[-300:]}")
        return True

    def _stop_export(self, serial: str) -> None:
        pidfile, raw = self._pidfile(serial), self._raw(serial)
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)  # the daemon flushes the qcow2 and unmounts its FUSE export
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.05)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if str(raw) in mountpoints():  # a daemon killed hard leaves its FUSE mount behind
            _run(["umount", "-l", str(raw)], "unmount a dead export")
        pidfile.unlink(missing_ok=True)
        raw.unlink(missing_ok=True)

    def remove_instance(self, instance_id: str) -> None:
        """The container is gone: its (empty) directory goes."""
        d = self.root / self._name(instance_id.replace("-", ""))
        if d.exists() and not any(str(m).startswith(str(d) + "/") for m in mountpoints()):
            for sub in d.iterdir():
                sub.rmdir()
            d.rmdir()

    def mounted(self, instance_id: str) -> dict[str, str]:
        """serial -> path in the container of the volumes mounted for an instance (the loop
        device's backing file is RUN/<serial>.raw)."""
        d = str(self.root / self._name(instance_id.replace("-", ""))) + "/"
        out = {}
        for mp, source in mountpoints().items():
            if not mp.startswith(d) or not source.startswith("/dev/loop"):
                continue
            try:
                backing = Path(f"/sys/block/{source[5:]}/loop/backing_file").read_text().strip()
            except OSError:
                continue
            if backing.startswith(str(self.run) + "/") and backing.endswith(".raw"):
                out[Path(backing).stem] = f"{TARGET}/{mp[len(d):]}"
        return out

    def exporting(self, serial: str) -> bool:
        """Does the volume's qemu-storage-daemon still run? (A killed one leaves its mount
        behind, over a FUSE file that answers every read with an error.)"""
        try:
            os.kill(int(self._pidfile(serial).read_text().strip()), 0)
        except (OSError, ValueError):
            return False
        return True

    def remount(self, serial: str, qcow2: Path, instance_id: str, name: str) -> str:
        """Mount again a volume whose mount is gone or whose export died: the dead mount is
        detached lazily (a process inside may still hold it; it gets errors, as after a disk
        loss), then exported and mounted afresh."""
        target = self.instance_dir(instance_id) / self._name(name)
        if str(target) in mountpoints():
            _run(["umount", "-l", str(target)], "unmount a dead volume")
        return self.mount(serial, qcow2, instance_id, name)

    def describe(self, serial: str, instance_id: str, name: str) -> dict:
        """The chain from the qcow2 to the container's directory, as the kernel has it now: the
        export daemon, its raw file, the loop device over it, the host mount point, the path inside."""
        target = self.root / self._name(instance_id.replace("-", "")) / self._name(name)
        raw, mounts = self._raw(serial), mountpoints()
        try:
            pid = int(self._pidfile(serial).read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            pid = None
        loop = mounts.get(str(target))
        fstype = None
        for line in Path("/proc/self/mounts").read_text().splitlines():
            parts = line.split(" ")
            if len(parts) > 2 and parts[1] == str(target):
                fstype = parts[2]
        return {"attached": loop is not None, "export_daemon_pid": pid,
                "export": f"qemu-storage-daemon: the qcow2 as a raw file over FUSE at {raw}" if pid else None,
                "loop_device": loop if loop and loop.startswith("/dev/loop") else None,
                "filesystem": fstype, "host_mount": str(target) if loop else None,
                "guest_path": f"{TARGET}/{name}", "propagation": f"{self.root} is a shared mount; each container "
                                                                   f"bind-mounts its directory at {TARGET} (rslave)",
                "find_it_inside": f"grep ' {TARGET}/{name} ' /proc/mounts"}

    def exports(self) -> list[str]:
        """Serials with a daemon pidfile (for the leak check and reconcile)."""
        return sorted(p.stem for p in self.run.glob("*.pid")) if self.run.exists() else []

    def remove_all(self) -> list[str]:
        """Unmount everything under ROOT, stop every export, drop ROOT's own mount (tests'
        teardown); returns what was still mounted."""
        left = sorted(m for m in mountpoints() if m.startswith(str(self.root) + "/"))
        for m in reversed(left):
            _run(["umount", "-l", m], "unmount")
        for serial in self.exports():
            self._stop_export(serial)
        for _ in range(16):  # binds stacked at ROOT by an older server's race: each is unmounted
            if str(self.root) not in mountpoints():
                break
            _run(["umount", "-l", str(self.root)], "unmount")
        return left
