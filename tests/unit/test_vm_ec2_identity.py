"""A VM's EC2 identity in its domain XML (issue 14: cloud-init's Ec2 datasource in debian-12).

On a VPC subnet (networking on) the domain's UUID starts `ec2` and its SMBIOS system serial
equals it - what cloud-init's ds-identify and identify_aws take for EC2 - so the guest reads
169.254.169.254; on libvirt's NAT network (networking off) the domain carries nothing of it."""
from __future__ import annotations

import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from emulator.compute.driver import LaunchSpec
from emulator.compute.libvirt import domain
from emulator.compute.types import INSTANCE_TYPES, InstanceType
from emulator.errors import InvalidParameter

IID = "i-0123456789abcdef0"
OPTS = domain.DomainOptions(run_as="+0:+0")
HV = {"mode": "qemu", "domain_type": "qemu", "reason": "configured"}


def _xml(tmp_path: Path, spec: LaunchSpec, *, on_subnet: bool, label: str = "lbl") -> ET.Element:
    image = {"dir": tmp_path, "kernel": tmp_path / "k", "initrd": None, "disk": tmp_path / "d", "ssh": True,
             "ready_marker": "up"}
    subnet = {"bridge": "pcb-0123456789a", "tap": "pct-0123456789a"} if on_subnet else {}
    return ET.fromstring(domain.instance_domain_xml(
        spec, image, HV, tmp_path / "i", "0e:00:00:00:00:01", "10.1.0.5", [], set(), cloud_label=label,
        network_name="net", opts=OPTS, **subnet))


def _spec(tmp_path: Path, iid: str = IID, type_name: str = "t3.micro") -> LaunchSpec:
    itype = INSTANCE_TYPES.get(type_name) or InstanceType(type_name, 1, 512)
    return LaunchSpec(iid, "acct", "web", str(tmp_path), itype)


def test_on_a_subnet_the_guest_sees_an_ec2_instance(tmp_path: Path):
    root = _xml(tmp_path, _spec(tmp_path), on_subnet=True)
    uuid = root.findtext("uuid")
    assert re.fullmatch(r"ec2[0-9a-f]{5}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", uuid)
    assert str(uuidlib.UUID(uuid)) == uuid, "libvirt takes it as a UUID"
    assert [el.tag for el in root][:2] == ["name", "uuid"]
    assert root.find("os/smbios").get("mode") == "sysinfo"
    system = {e.get("name"): e.text for e in root.findall("sysinfo[@type='smbios']/system/entry")}
    # ds-identify: product UUID and serial both start ec2 and are equal (case aside); libvirt
    # refuses a sysinfo uuid that differs from the domain's
    assert system == {"manufacturer": "Amazon EC2", "product": "t3.micro", "serial": uuid, "uuid": uuid}
    chassis = {e.get("name"): e.text for e in root.findall("sysinfo/chassis/entry")}
    assert chassis["asset"] == IID, "a Nitro instance's chassis asset tag is its instance id"
    assert domain.instance_for_uuid(uuid) == IID and domain.instance_for_uuid(uuid.upper()) == IID


def test_with_networking_off_the_domain_has_no_ec2_identity(tmp_path: Path):
    root = _xml(tmp_path, _spec(tmp_path), on_subnet=False)
    assert root.find("uuid") is None, "libvirt picks a random UUID, which cannot start ec2 on purpose"
    assert root.find("sysinfo") is None and root.find("os/smbios") is None
    assert root.find("devices/interface/source").get("network") == "net"


def test_ec2_uuids_are_unique_per_instance_and_per_cloud(tmp_path: Path):
    a = domain.ec2_uuid("cloud-a", IID)
    assert a == domain.ec2_uuid("cloud-a", IID), "it follows from the cloud and the instance"
    assert a != domain.ec2_uuid("cloud-b", IID), "two clouds on one libvirtd"
    other = "i-0123456789abcdef1"
    assert a != domain.ec2_uuid("cloud-a", other) and domain.instance_for_uuid(domain.ec2_uuid("x", other)) == other
    for not_ours in ("12345678-9abc-def0-1234-56789abcdef0", "", "ec2", "ec2" + "0" * 28, "ec2" + "0" * 29 + "\n",
                     "fc2" + "0" * 29, None, 42):
        assert domain.instance_for_uuid(not_ours) is None


@pytest.mark.parametrize("bad_iid", ["i-0123", "i-0123456789ABCDEF0", "i-0123456789abcdef0<x/>", "", None])
def test_bad_instance_ids_never_reach_the_uuid(bad_iid):
    with pytest.raises(InvalidParameter):
        domain.ec2_uuid("lbl", bad_iid)


@pytest.mark.parametrize("bad_type", ["", "t3", "t3.micro</entry><x/>", "T3.MICRO", "t3.micro\n", "a" * 40 + ".x"])
def test_bad_type_names_never_reach_the_sysinfo(tmp_path: Path, bad_type: str):
    spec = replace(_spec(tmp_path), type=InstanceType(bad_type, 1, 512))
    with pytest.raises(InvalidParameter):
        _xml(tmp_path, spec, on_subnet=True)
    _xml(tmp_path, spec, on_subnet=False)  # the name reaches no SMBIOS there


def test_a_uuid_that_does_not_name_the_instance_is_refused(tmp_path: Path):
    d = ET.fromstring("<domain><name>pc-x</name><os/></domain>")
    with pytest.raises(InvalidParameter):
        domain.ec2_identity(d, domain.ec2_uuid("lbl", "i-0123456789abcdef1"), IID, "t3.micro")
    with pytest.raises(InvalidParameter):
        domain.ec2_identity(d, str(uuidlib.uuid4()), IID, "t3.micro")
    assert d.find("uuid") is None and d.find("sysinfo") is None, "nothing added before the checks"


def test_internals_say_which_datasource_the_guest_reads(tmp_path: Path):
    from emulator.compute.libvirt.internals import guest_identity
    on = guest_identity(_xml(tmp_path, _spec(tmp_path), on_subnet=True), IID)
    assert on["ec2"] and on["smbios_uuid"] == on["smbios_serial"] == domain.ec2_uuid("lbl", IID)
    assert on["cloud_init_datasource"].startswith("Ec2")
    off = guest_identity(_xml(tmp_path, _spec(tmp_path), on_subnet=False), IID)
    assert off == {"smbios_uuid": None, "smbios_serial": None, "ec2": False,
                   "cloud_init_datasource": "NoCloud (the cidata seed disk)"}
    assert not guest_identity(_xml(tmp_path, _spec(tmp_path), on_subnet=True), "i-0123456789abcdef1")["ec2"]
