"""The engine halves of volumes, without engines: the disk XML a domain gets (names and paths
never reach libvirt unchecked), reading a domain's volume disks back by serial, and the host
mount names (ids only: never a path a caller chose)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator.compute.hostmount import HostMounts, mountpoints
from emulator.compute.libvirt.disks import attached, disk_xml
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
