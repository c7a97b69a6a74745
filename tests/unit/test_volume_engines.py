"""The engine halves of volumes, without engines: the disk XML a domain gets (names and paths
never reach libvirt unchecked), reading a domain's volume disks back by serial, and the host
mount names (ids only: never a path a caller chose); a stopped VM's root snapshot flattened by
the real qemu-img."""
from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator.compute.hostmount import HostMounts, mountpoints
from emulator.compute.libvirt.disks import VolumeDisks, attached, disk_xml
from emulator.errors import InvalidParameter

DOMAIN = """<domain><devices>
<disk type='file' device='disk'><source file='/x/root.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><source file='/x/seed.iso'/><target dev='vdb' bus='virtio'/><readonly/></disk>
<disk type='file' device='disk'><source file='/p/vol-1.qcow2'/><target dev='vdc' bus='virtio'/>
<serial>vol0123456789abcdef0</serial></disk></devices></domain>"""


def test_disk_xml_carries_the_serial_and_an_escaped_path():
    el = ET.fromstring(disk_xml(Path("/pool/a'b&<c>.qcow2"), "vdc", "vol0123456789abcdef0"))
    assert el.find("source").get("file") == "/pool/a'b&<c>.qcow2"
    assert (el.find("target").get("dev"), el.findtext("serial")) == ("vdc", "vol0123456789abcdef0")
    for bad in ("vol-0123456789abcdef0", "x" * 21, "VOL", "a</serial>", ""):
        with pytest.raises(InvalidParameter):
            disk_xml(Path("/p"), "vdc", bad)


def test_a_domains_volumes_are_found_by_serial():
    assert attached(DOMAIN) == {"vol0123456789abcdef0": "vdc"}


def test_host_mount_names_are_ids_only(tmp_path):
    m = HostMounts(tmp_path / "mounts", tmp_path / "run")
    for bad in ("../etc", "a/b", "", "x" * 21, "Sdf", None):
        with pytest.raises(InvalidParameter):
            m._name(bad)
    assert m._name("i0123456789abcdef0") == "i0123456789abcdef0"
    assert m.exports() == [] and "/" in mountpoints()


class _StoppedDomain:
    def isActive(self) -> int:
        return 0


class _Disks(VolumeDisks):
    """VolumeDisks over a stopped domain whose instance directory is a temporary folder."""

    def __init__(self, inst_dir: Path):
        self.inst_dir = inst_dir

    def _dom(self, engine_id: str):
        return _StoppedDomain()

    def _inst_dir(self, engine_id: str) -> Path:
        return self.inst_dir


def test_a_stopped_vms_root_snapshot_is_its_overlay_flattened(tmp_path):
    """Real qemu-img: the copy holds what the base and the overlay hold, and needs neither."""
    base, inst = tmp_path / "disk.qcow2", tmp_path / "inst"
    inst.mkdir()
    run = lambda *a: subprocess.run(["qemu-img", *a], check=True, capture_output=True, text=True).stdout  # noqa: E731
    run("create", "-q", "-f", "qcow2", str(base), "4M")
    run("create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(inst / "root.qcow2"))
    subprocess.run(["qemu-io", "-c", "write -P 0x61 0 64k", str(base)], check=True, capture_output=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x62 1M 64k", str(inst / "root.qcow2")], check=True, capture_output=True)
    target = tmp_path / "snap.qcow2"
    ref, stored = _Disks(inst).snapshot_root("pc-i-0123456789abcdef0", "i-0123456789abcdef0", "snap-x", target)
    base.unlink()
    (inst / "root.qcow2").unlink()
    info = json.loads(run("info", "--output=json", str(target)))
    assert ref == "" and stored > 0 and "backing-filename" not in info and info["virtual-size"] == 4 << 20
    for offset, pattern in ((0, "0x61"), (1 << 20, "0x62")):
        subprocess.run(["qemu-io", "-c", f"read -P {pattern} {offset} 64k", str(target)], check=True,
                       capture_output=True)


def test_launches_at_once_share_the_mount_root_once(tmp_path):
    """Real mounts (root): six threads sharing ROOT at once, as Terraform's parallel creates do,
    leave one shared bind at ROOT; two stacked binds leave the lower one private, and dockerd
    then refuses every container's rslave /volumes ("not a shared or slave mount")."""
    import threading

    m = HostMounts(tmp_path / "mounts", tmp_path / "run")
    start = threading.Barrier(6)
    made: list[bool] = []

    def share():
        start.wait()
        made.append(m.ensure_shared())

    threads = [threading.Thread(target=share) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        at_root = [line.split(" ") for line in Path("/proc/self/mountinfo").read_text().splitlines()
                   if line.split(" ")[4] == str(m.root)]
        assert sorted(made) == [False] * 5 + [True], made
        assert len(at_root) == 1, at_root
        assert any(f.startswith("shared:") for f in at_root[0][6:at_root[0].index("-")]), at_root
    finally:
        m.remove_all()
    assert str(m.root) not in mountpoints()
