"""Domain and network XML, built and read by pure functions (no libvirt, no I/O).

A domain's <metadata> carries what pocketcloud needs to find it again without its
database: the cloud label, owner, image, MAC, private IP, readiness hints, the hypervisor
chosen and why, and the port forwards.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ...errors import InvalidParameter
from ..driver import EngineInstance, LaunchSpec, PortForward

NS = "https://pocketcloud.dev/xmlns/instance/1"
NS_KEY = "pocketcloud"
HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
IID = re.compile(r"^i-[0-9a-f]{17}$")
ENGINE_ID = re.compile(r"^pc-i-[0-9a-f]{17}$")
EC2_UUID = re.compile(r"^ec2[0-9a-f]{29}$")
TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,15}\.[a-z0-9]{1,16}$")

# libvirt domain state -> EC2 state (running may still be pending: the guest is not ready yet)
STATES = {0: "pending", 1: "running", 2: "running", 3: "running", 4: "stopping", 5: "stopped", 6: "stopped",
          7: "stopped"}
ENGINE_STATUS = {1: "running", 2: "blocked", 3: "paused", 4: "shutting down", 5: "shut off", 6: "crashed",
                 7: "pm-suspended"}
ACTIVE_STATES = (1, 2, 3)


@dataclass(frozen=True)
class DomainOptions:
    """Host-wide choices every domain of one driver shares."""

    run_as: str  # qemu's DAC label '+UID:+GID'
    tcg_tb_cache_mib: int | None = None  # TCG translation cache per VM; None: QEMU's default (1 GiB)
    free_page_reporting: bool = True


def mac_for(instance_id: str, salt: int = 0) -> str:
    """The MAC follows from the instance id, so a DHCP reservation can be found (and
    removed) even when the domain is gone."""
    h = hashlib.sha256(f"{instance_id}/{salt}".encode()).digest()
    return "52:54:00:%02x:%02x:%02x" % (h[0], h[1], h[2])


def engine_id_for(instance_id: str) -> str:
    return f"pc-{instance_id}"


def check_engine_id(engine_id: str) -> str:
    """The instance id inside a domain name; InvalidParameter for anything else (the
    engine id becomes a path)."""
    if not isinstance(engine_id, str) or not ENGINE_ID.match(engine_id):
        raise InvalidParameter(f"invalid VM engine id {str(engine_id)[:40]!r}")
    return engine_id[3:]


def ec2_uuid(cloud_label: str, instance_id: str) -> str:
    """The domain UUID of a VM on a VPC subnet: `ec2` (what cloud-init's ds-identify and
    identify_aws take for EC2, together with an equal serial), the instance id's 17 hex
    digits (so the UUID names its instance: `instance_for_uuid`), and 12 from a hash of the
    cloud and the instance (two clouds sharing libvirtd never get the same UUID)."""
    if not isinstance(instance_id, str) or not IID.match(instance_id):
        raise InvalidParameter(f"invalid instance id {str(instance_id)[:40]!r}")
    tail = hashlib.sha256(f"{cloud_label}/{instance_id}".encode()).hexdigest()[:12]
    h = "ec2" + instance_id[2:] + tail
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def instance_for_uuid(uuid: str) -> str | None:
    """The instance id inside an `ec2_uuid`; None for any other UUID (the instances of a cloud
    with networking off, and every other domain)."""
    h = uuid.replace("-", "").lower() if isinstance(uuid, str) else ""
    return f"i-{h[3:20]}" if EC2_UUID.fullmatch(h) else None


def ec2_identity(d: ET.Element, uuid: str, instance_id: str, type_name: str) -> None:
    """Make the domain an EC2 instance to its guest, as a Nitro instance's SMBIOS reads:
    system UUID = serial = `uuid` (starting ec2), vendor `Amazon EC2`, product the instance
    type, chassis asset tag the instance id. cloud-init then finds its Ec2 datasource, and
    169.254.169.254 (VPC networking) answers it."""
    if not EC2_UUID.fullmatch(uuid.replace("-", "")) or instance_for_uuid(uuid) != instance_id:
        raise InvalidParameter(f"invalid EC2 UUID {str(uuid)[:40]!r} for {str(instance_id)[:40]!r}")
    if not TYPE_NAME.fullmatch(type_name or ""):
        raise InvalidParameter(f"invalid instance type name {str(type_name)[:40]!r}")
    ET.SubElement(d.find("os"), "smbios", mode="sysinfo")
    name = d.find("name")
    uuid_el = ET.Element("uuid")
    uuid_el.text = uuid
    d.insert(list(d).index(name) + 1, uuid_el)
    sysinfo = ET.SubElement(d, "sysinfo", type="smbios")
    system = ET.SubElement(sysinfo, "system")
    for k, v in (("manufacturer", "Amazon EC2"), ("product", type_name), ("serial", uuid), ("uuid", uuid)):
        ET.SubElement(system, "entry", name=k).text = v
    chassis = ET.SubElement(sysinfo, "chassis")
    ET.SubElement(chassis, "entry", name="manufacturer").text = "Amazon EC2"
    ET.SubElement(chassis, "entry", name="asset").text = instance_id


def hostname_for(name: str, instance_id: str) -> str:
    """A valid DNS label from an instance name ('web_1.prod' -> 'web-1-prod')."""
    if name and HOSTNAME.match(name):
        return name
    clean = re.sub(r"[^A-Za-z0-9-]+", "-", name or "").strip("-")[:63].strip("-")
    return clean if clean and HOSTNAME.match(clean) else instance_id


def base_domain(name: str, domain_type: str, vcpus: int, memory_mib: int, vm: dict, cmdline: str,
                log_path: Path, opts: DomainOptions) -> ET.Element:
    """A direct-kernel-boot domain with a logged serial console (no disks, no network):
    the KVM probe uses it as is, instances add their disks and NIC."""
    d = ET.Element("domain", type=domain_type)
    ET.SubElement(d, "name").text = name
    ET.SubElement(d, "memory", unit="MiB").text = str(int(memory_mib))
    ET.SubElement(d, "vcpu", placement="static").text = str(int(vcpus))
    os_el = ET.SubElement(d, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_el, "kernel").text = str(vm["kernel"])
    if vm.get("initrd"):
        ET.SubElement(os_el, "initrd").text = str(vm["initrd"])
    ET.SubElement(os_el, "cmdline").text = cmdline
    features = ET.SubElement(d, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    if domain_type == "qemu" and opts.tcg_tb_cache_mib:
        # QEMU's TCG translation cache defaults to 1 GiB; most of a small guest's qemu RSS.
        tcg = ET.SubElement(features, "tcg")
        ET.SubElement(tcg, "tb-cache", unit="MiB").text = str(int(opts.tcg_tb_cache_mib))
    if domain_type == "kvm":
        ET.SubElement(d, "cpu", mode="host-passthrough")
    ET.SubElement(d, "clock", offset="utc")
    ET.SubElement(d, "on_poweroff").text = "destroy"
    ET.SubElement(d, "on_reboot").text = "restart"
    ET.SubElement(d, "on_crash").text = "destroy"
    dev = ET.SubElement(d, "devices")
    serial = ET.SubElement(dev, "serial", type="pty")
    ET.SubElement(serial, "log", file=str(log_path), append="on")
    ET.SubElement(serial, "target", port="0")
    console = ET.SubElement(dev, "console", type="pty")
    ET.SubElement(console, "target", type="serial", port="0")
    rng = ET.SubElement(dev, "rng", model="virtio")
    ET.SubElement(rng, "backend", model="random").text = "/dev/urandom"
    if opts.free_page_reporting:
        # The guest hands pages it frees back to the host: an idle VM's qemu RSS shrinks.
        ET.SubElement(dev, "memballoon", model="virtio", freePageReporting="on")
    else:
        ET.SubElement(dev, "memballoon", model="none")
    # qemu runs as this (unprivileged) user; libvirt's DAC driver hands it the domain's files
    # while it runs and gives them back afterwards.
    label = ET.SubElement(d, "seclabel", type="static", model="dac", relabel="yes")
    ET.SubElement(label, "label").text = opts.run_as
    return d


def instance_domain_xml(spec: LaunchSpec, vm: dict, hv: dict, inst_dir: Path, mac: str, ip: str,
                        ports: list[PortForward], auto_ports: set[int], *, cloud_label: str, network_name: str,
                        opts: DomainOptions, bridge: str | None = None, tap: str | None = None) -> str:
    """An instance's domain: the base plus its overlay, its seed, its NIC and the metadata. With
    `bridge` the NIC is a tap named `tap` on the subnet's bridge (VPC networking: the name is
    known in advance, so the rules pin it before the guest sends a frame), and the guest sees
    an EC2 instance (`ec2_identity`: 169.254.169.254 answers it there); else the NIC is on
    `network_name` and the domain has libvirt's own UUID and SMBIOS, so no guest waits for a
    metadata service that is not there."""
    d = base_domain(engine_id_for(spec.instance_id), hv["domain_type"], spec.type.vcpus, spec.type.memory_mib, vm,
                    vm.get("cmdline", ""), inst_dir / "console.log", opts)
    if bridge:
        ec2_identity(d, ec2_uuid(cloud_label, spec.instance_id), spec.instance_id, spec.type.name)
    ET.SubElement(d, "title").text = f"pocketcloud {spec.instance_id} ({spec.name or 'unnamed'})"
    ET.SubElement(d, "description").text = (
        f"pocketcloud instance {spec.instance_id} of {spec.owner}, image {vm['dir'].name}, type {spec.type.name}"
    )
    meta = ET.SubElement(d, "metadata")
    m = ET.SubElement(meta, f"{{{NS}}}instance")
    for k, v in (
        ("cloud", cloud_label), ("instance-id", spec.instance_id), ("owner", spec.owner),
        ("image", str(vm["dir"])), ("type", spec.type.name), ("mac", mac), ("ip", ip),
        ("ssh", "yes" if vm.get("ssh") else "no"), ("ready-marker", vm.get("ready_marker", "")),
        ("hypervisor", hv["mode"]), ("hypervisor-reason", hv["reason"]),
        ("guest-kernel", vm.get("guest_kernel", "")), ("ssh-user", vm.get("ssh_user", "root")),
    ):
        ET.SubElement(m, f"{{{NS}}}{k}").text = v
    ports_element(m, ports, auto_ports)
    dev = d.find("devices")
    disk = ET.Element("disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2", discard="unmap")
    ET.SubElement(disk, "source", file=str(inst_dir / "root.qcow2"))
    # The base is shared by every VM of the image and only ever read: libvirt must not chown
    # it to one domain's user (it never gives a backing file back); it is readable as it is.
    backing = ET.SubElement(disk, "backingStore", type="file")
    ET.SubElement(backing, "format", type="qcow2")
    base = ET.SubElement(backing, "source", file=str(vm["disk"]))
    ET.SubElement(base, "seclabel", model="dac", relabel="no")
    ET.SubElement(backing, "backingStore")
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    seed = ET.Element("disk", type="file", device="disk")
    ET.SubElement(seed, "driver", name="qemu", type="raw")
    ET.SubElement(seed, "source", file=str(inst_dir / "seed.iso"))
    ET.SubElement(seed, "target", dev="vdb", bus="virtio")
    ET.SubElement(seed, "readonly")
    nic = ET.Element("interface", type="bridge" if bridge else "network")
    ET.SubElement(nic, "mac", address=mac)
    if bridge:
        ET.SubElement(nic, "source", bridge=bridge)
        ET.SubElement(nic, "target", dev=tap)
    else:
        ET.SubElement(nic, "source", network=network_name)
    ET.SubElement(nic, "model", type="virtio")
    for i, el in enumerate((disk, seed, nic)):
        dev.insert(i, el)
    ET.register_namespace(NS_KEY, NS)
    return ET.tostring(d, encoding="unicode")


def ports_element(parent: ET.Element, ports, auto_ports) -> ET.Element:
    ports_el = ET.SubElement(parent, f"{{{NS}}}ports")
    for p in ports:
        attrs = {"guest": str(p.guest), "host": str(p.host), "protocol": p.protocol}
        if p.guest in auto_ports:
            attrs["auto"] = "yes"  # added by the driver (SSH), not asked for
        ET.SubElement(ports_el, f"{{{NS}}}port", attrs)
    return ports_el


def parse_metadata(raw: str) -> dict:
    """The <instance> metadata element as a dict: text fields by tag, plus `ports` (a list
    of PortForward) and `auto_ports` (guest ports the driver added by itself)."""
    out: dict = {}
    for el in ET.fromstring(raw):
        tag = el.tag.split("}")[-1]
        if tag == "ports":
            out["ports"] = [PortForward(int(p.get("guest")), int(p.get("host")), p.get("protocol", "tcp")) for p in el]
            out["auto_ports"] = {int(p.get("guest")) for p in el if p.get("auto") == "yes"}
        else:
            out[tag] = el.text or ""
    return out


def metadata_with_ports(raw: str, ports: list[PortForward], auto_ports: set[int]) -> str:
    """The metadata element again, its ports replaced, ready for virDomainSetMetadata
    (which adds the namespace itself and refuses a declared one)."""
    root = ET.fromstring(raw)
    for el in list(root):
        if el.tag.split("}")[-1] == "ports":
            root.remove(el)
    ports_element(root, ports, auto_ports)
    for el in root.iter():
        el.tag = el.tag.split("}")[-1]
    return ET.tostring(root, encoding="unicode")


def network_xml(name: str, network: ipaddress.IPv4Network) -> str:
    """A NAT network whose dynamic DHCP range is the upper half of the subnet; the lower
    half is left for the static reservations instances get."""
    root = ET.Element("network")
    ET.SubElement(root, "name").text = name
    ET.SubElement(root, "forward", mode="nat")
    ET.SubElement(root, "bridge", stp="on", delay="0")
    ip = ET.SubElement(root, "ip", address=str(network.network_address + 1), netmask=str(network.netmask))
    dhcp = ET.SubElement(ip, "dhcp")
    hosts = list(network.hosts())
    ET.SubElement(dhcp, "range", start=str(hosts[len(hosts) // 2]), end=str(hosts[-1]))
    return ET.tostring(root, encoding="unicode")


def static_candidates(network: ipaddress.IPv4Network, instance_id: str) -> list[str]:
    """The addresses an instance may get, the first one chosen by its id (so two launches
    rarely race for the same address), from the lower half (the dynamic range is the upper)."""
    hosts = list(network.hosts())
    candidates = [str(ip) for ip in hosts[1: len(hosts) // 2]]
    start = int(hashlib.sha256(instance_id.encode()).hexdigest(), 16) % len(candidates)
    return candidates[start:] + candidates[:start]


def dhcp_host_xml(mac: str, instance_id: str, ip: str) -> str:
    # Named after the instance id: libvirt refuses two entries with the same name.
    return ET.tostring(ET.Element("host", mac=mac, name=instance_id, ip=ip), encoding="unicode")


def interface_target(domain_xml: str) -> str | None:
    """The host tap device of the domain's first NIC (present while it runs)."""
    iface = ET.fromstring(domain_xml).find("./devices/interface")
    target = iface.find("target") if iface is not None else None
    return target.get("dev") if target is not None else None


def engine_instance(engine_id: str, state_code: int, meta: dict, *, ready: bool, inst_dir: Path,
                    vcpus_memory: tuple[int, int] | None = None, qemu_pid: int | None = None,
                    forward_errors: list[str] = ()) -> EngineInstance:
    """What the services see of a domain. A running guest that is not ready yet is pending."""
    state = STATES.get(state_code, "pending")
    if state == "running" and not ready:
        state = "pending"
    details = {
        "engine": "libvirt",
        "domain": engine_id,
        "engine_status": ENGINE_STATUS.get(state_code, "no state"),
        "hypervisor": meta.get("hypervisor"),
        "hypervisor_reason": meta.get("hypervisor-reason"),
        "guest_kernel": meta.get("guest-kernel"),
        **({"vcpus": vcpus_memory[0], "memory_mib": vcpus_memory[1]} if vcpus_memory else {}),
        "mac": meta.get("mac"),
        "ready": ready,
        "ssh": meta.get("ssh") == "yes",
        "console_log": str(inst_dir / "console.log"),
        "root_disk": str(inst_dir / "root.qcow2"),
        "image": meta.get("image"),
    }
    if qemu_pid:
        details["qemu_pid"] = qemu_pid
    if forward_errors:
        details["forward_errors"] = list(forward_errors)
    return EngineInstance(engine_id=engine_id, state=state,
                          ports=tuple(sorted(meta.get("ports", []), key=lambda p: p.guest)),
                          private_ip=meta.get("ip") or None, details=details)
