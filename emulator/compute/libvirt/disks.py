"""Volumes as hot-plugged virtio disks of a domain (block storage, issue 15).

A volume's disk carries the volume id (without its dash: virtio serials hold 20 bytes, the
same form EC2's Nitro NVMe disks use) as its serial, so the guest finds it in
/sys/block/vdX/serial whatever name its kernel gave it, and the driver finds it in the domain
XML after a restart. The target name is the first free vdX after the instance's own disks.
Attach and detach change the running domain and its persistent definition together, so a
volume stays attached across a stop and start; a running guest must release a disk before
it is gone (ACPI PCI hot-unplug), which a detach waits for.
"""
from __future__ import annotations

import string
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ...errors import EngineError, InvalidParameter, NotFound
from .conn import engine_errors, libvirt

ROOT_TARGET = "vda"  # the instance's own disk (domain.py)
SERIAL_CHARS = set(string.ascii_lowercase + string.digits)


def _serial(serial: str) -> str:
    if not isinstance(serial, str) or not 1 <= len(serial) <= 20 or not set(serial) <= SERIAL_CHARS:
        raise InvalidParameter(f"invalid disk serial {str(serial)[:30]!r}")
    return serial


def attached(xml: str) -> dict[str, str]:
    """serial -> target dev of every disk with a serial in a domain's XML."""
    out = {}
    for disk in ET.fromstring(xml).iter("disk"):
        serial, target = disk.findtext("serial"), disk.find("target")
        if serial and target is not None:
            out[serial] = target.get("dev")
    return out


def _targets(xml: str) -> set[str]:
    return {t.get("dev") for t in ET.fromstring(xml).iter("target") if t.get("dev")}


def _disk_targets(xml: str) -> set[str]:
    return {d.find("target").get("dev") for d in ET.fromstring(xml).iter("disk")
            if d.get("device", "disk") == "disk" and d.find("target") is not None}


def disk_xml(path: Path, target: str, serial: str) -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2' discard='unmap'/>"
            f"<source file={quoteattr(str(path))}/><target dev='{target}' bus='virtio'/>"
            f"<serial>{_serial(serial)}</serial></disk>")


class VolumeDisks:
    """Mixed into LibvirtDriver (uses its _dom)."""

    detach_timeout = 60.0  # a TCG guest answers the unplug request in seconds; a wedged one never

    def _xmls(self, dom) -> tuple[str, str | None]:
        live = dom.XMLDesc(0)
        config = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if dom.isPersistent() else None
        return live, config

    def attach_volume(self, engine_id: str, instance_id: str, path: Path, serial: str, device: str) -> str:
        dom = self._dom(engine_id)
        with engine_errors(f"attach a volume to {engine_id}"):
            live, config = self._xmls(dom)
            if serial in attached(live) or (config and serial in attached(config)):
                return "/dev/" + (attached(live).get(serial) or attached(config)[serial])
            taken = _targets(live) | (_targets(config) if config else set())
            free = [f"vd{c}" for c in string.ascii_lowercase[2:] if f"vd{c}" not in taken]
            if not free:
                raise InvalidParameter(f"{engine_id} has no free disk slot left", code="AttachmentLimitExceeded")
            flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if dom.isPersistent() else 0
            if dom.isActive():
                flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
            dom.attachDeviceFlags(disk_xml(path, free[0], serial), flags)
        return "/dev/" + free[0]

    def detach_volume(self, engine_id: str, instance_id: str, serial: str, device: str) -> None:
        """Unplug from the running guest (waiting until it let go), then from the definition.
        A volume already gone is not an error (a retried detach)."""
        try:
            dom = self._dom(engine_id)
        except NotFound:
            return
        with engine_errors(f"detach a volume from {engine_id}"):
            live, config = self._xmls(dom)
            if dom.isActive() and serial in attached(live):
                dom.detachDeviceFlags(self._disk_of(live, serial), libvirt.VIR_DOMAIN_AFFECT_LIVE)
                deadline = time.monotonic() + self.detach_timeout
                while serial in attached(dom.XMLDesc(0)):
                    if time.monotonic() > deadline:
                        raise EngineError(f"the guest of {engine_id} did not release the disk within "
                                          f"{self.detach_timeout:.0f}s (unmount it inside, then detach again)",
                                          code="VolumeDetachTimeout")
                    time.sleep(0.2)
            if config and serial in attached(config):
                dom.detachDeviceFlags(self._disk_of(config, serial), libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def volume_view(self, engine_id: str, instance_id: str, serial: str, device: str) -> dict:
        try:
            dom = self._dom(engine_id)
        except NotFound:
            return {}
        with engine_errors(f"look at the disks of {engine_id}"):
            live = dom.isActive()
            xml = dom.XMLDesc(0 if live else libvirt.VIR_DOMAIN_XML_INACTIVE)
        disk = next((d for d in ET.fromstring(xml).iter("disk") if d.findtext("serial") == _serial(serial)), None)
        if disk is None:
            return {"engine": "libvirt", "domain": engine_id, "attached": False}
        target, source, driver = disk.find("target"), disk.find("source"), disk.find("driver")
        dev = target.get("dev") if target is not None else None
        return {"engine": "libvirt", "domain": engine_id, "attached": True, "running": bool(live),
                "host_file": source.get("file") if source is not None else None,
                "format": driver.get("type") if driver is not None else None,
                "bus": target.get("bus") if target is not None else None, "target": dev,
                "alias": (disk.find("alias").get("name") if disk.find("alias") is not None else None),
                "guest_device": f"/dev/{dev}" if dev else None, "serial": serial,
                "find_it_inside": f"cat /sys/block/{dev}/serial  # {serial}; udev also links "
                                  f"/dev/disk/by-id/virtio-{serial}"}

    def grow_volume(self, engine_id: str, serial: str, size_bytes: int) -> bool:
        """blockResize on the running domain (the guest sees the new size at once); a domain
        that does not run is grown through its file by the caller."""
        try:
            dom = self._dom(engine_id)
        except NotFound:
            return False
        with engine_errors(f"grow a volume of {engine_id}"):
            if not dom.isActive():
                return False
            target = attached(dom.XMLDesc(0)).get(serial)
            if target is None:
                return False
            dom.blockResize(target, int(size_bytes), libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        return True

    def snapshot_volume(self, engine_id: str, instance_id: str, serial: str, device: str, source: Path,
                        target: Path) -> bool:
        """A push backup of the running domain's disk: QEMU copies it as it was when the backup
        began (copy-before-write) while the guest goes on. False when the domain does not run
        (the file is still, the caller copies it)."""
        try:
            dom = self._dom(engine_id)
        except NotFound:
            return False
        with engine_errors(f"snapshot a volume of {engine_id}"):
            if not dom.isActive():
                return False
            live = dom.XMLDesc(0)
            disks = attached(live)
            if serial not in disks:
                return False
            self._push_backup(dom, live, disks[serial], target, serial)
        return True

    def _push_backup(self, dom, live_xml: str, disk: str, target: Path, what: str) -> None:
        """Copy the running domain's disk `disk` (a target dev) into `target`, whole: a backup
        reads through the disk's backing chain, so a root overlay comes out flattened."""
        others = "".join(f"<disk name='{t}' backup='no'/>" for t in sorted(_disk_targets(live_xml)) if t != disk)
        dom.backupBegin(f"<domainbackup mode='push'><disks><disk name='{disk}' backup='yes' type='file'>"
                        f"<driver type='qcow2'/><target file={quoteattr(str(target))}/></disk>{others}"
                        "</disks></domainbackup>", None, 0)
        deadline = time.monotonic() + 3600
        while self._backup_running(dom):
            if time.monotonic() > deadline:
                dom.abortJob()
                raise EngineError(f"the snapshot of {what} did not finish within an hour")
            time.sleep(0.1)
        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
            raise EngineError(f"the snapshot of {what} failed: {stats.get('errmsg') or stats}")

    def snapshot_root(self, engine_id: str, instance_id: str, snapshot_id: str, target: Path) -> tuple[str, int]:
        """The root disk (vda: an overlay on the image's base) as one standalone qcow2: a push
        backup while the domain runs, `qemu-img convert` of the overlay while it does not."""
        dom = self._dom(engine_id)
        with engine_errors(f"snapshot the root of {instance_id}"):
            running = dom.isActive()
            if running:
                self._push_backup(dom, dom.XMLDesc(0), ROOT_TARGET, target, f"{instance_id}'s root")
        if not running:
            overlay = self._inst_dir(engine_id) / "root.qcow2"
            try:
                res = subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(overlay), str(target)],
                                     capture_output=True, text=True, timeout=3600)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise EngineError(f"snapshot the root of {instance_id}: qemu-img: {e}") from None
            if res.returncode != 0:
                raise EngineError(f"snapshot the root of {instance_id}: {res.stderr.strip()[-400:]}")
        try:
            return "", target.stat().st_blocks * 512
        except FileNotFoundError:
            raise EngineError(f"the snapshot of {instance_id}'s root left no file") from None

    @staticmethod
    def _backup_running(dom) -> bool:
        try:
            dom.backupGetXMLDesc(0)
            return True
        except libvirt.libvirtError:
            return False

    @staticmethod
    def _disk_of(xml: str, serial: str) -> str:
        for disk in ET.fromstring(xml).iter("disk"):
            if disk.findtext("serial") == serial:
                return ET.tostring(disk, encoding="unicode")
        raise NotFound(f"no disk with serial {serial}")

    def volume_disks(self, engine_id: str) -> dict[str, str]:
        """serial -> guest device of the volumes the domain has (live when it runs)."""
        try:
            dom = self._dom(engine_id)
        except NotFound:
            return {}
        with engine_errors(f"disks of {engine_id}"):
            xml = dom.XMLDesc(0) if dom.isActive() or not dom.isPersistent() else dom.XMLDesc(
                libvirt.VIR_DOMAIN_XML_INACTIVE)
        return {s: "/dev/" + t for s, t in attached(xml).items()}
