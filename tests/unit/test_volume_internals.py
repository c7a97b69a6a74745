"""The engine's side of `volumes internals` for a VM, read from a domain's XML (no libvirt):
the disk found by its serial, never by its position; a volume not in the domain says so."""
from __future__ import annotations

import pytest

from emulator.compute.libvirt.disks import VolumeDisks
from emulator.errors import InvalidParameter

DOMAIN = """<domain><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/x/root.qcow2'/>
<target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/p/vol-0123456789abcdef0.qcow2'/>
<target dev='vdc' bus='virtio'/><serial>vol0123456789abcdef0</serial><alias name='virtio-disk2'/></disk>
</devices></domain>"""


class Dom:
    def isActive(self):
        return True

    def XMLDesc(self, flags):
        return DOMAIN


class Disks(VolumeDisks):
    def _dom(self, engine_id):
        return Dom()


def test_a_vm_volume_is_described_from_the_domains_disk_with_its_serial():
    view = Disks().volume_view("pc-i-1", "i-1", "vol0123456789abcdef0", "/dev/sdf")
    assert view == {"engine": "libvirt", "domain": "pc-i-1", "attached": True, "running": True,
                    "host_file": "/p/vol-0123456789abcdef0.qcow2", "format": "qcow2", "bus": "virtio",
                    "target": "vdc", "alias": "virtio-disk2", "guest_device": "/dev/vdc",
                    "serial": "vol0123456789abcdef0",
                    "find_it_inside": "cat /sys/block/vdc/serial  # vol0123456789abcdef0; udev also links "
                                      "/dev/disk/by-id/virtio-vol0123456789abcdef0"}
    assert Disks().volume_view("pc-i-1", "i-1", "vol0000000000000000a", "/dev/sdg") == \
        {"engine": "libvirt", "domain": "pc-i-1", "attached": False}
    with pytest.raises(InvalidParameter):
        Disks().volume_view("pc-i-1", "i-1", "vol-0123'", "/dev/sdf")
