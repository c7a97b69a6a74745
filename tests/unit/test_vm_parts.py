"""VM driver parts that need no engine: key checks, the TCP forwarder, the NoCloud seed,
domain and network XML, launch checks."""
from __future__ import annotations

import ipaddress
import io
import socket
import tarfile
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator.compute.driver import LaunchSpec, PortForward
from emulator.compute.forwarder import Forwarder
from emulator.compute import cloudinit
from emulator.compute.libvirt import domain
from emulator.compute.libvirt.domain import NS
from emulator.compute.libvirt.image import check_launch
from emulator.compute.sshkeys import fingerprint, generate_keypair, validate_public_key
from emulator.compute.types import INSTANCE_TYPES, InstanceType
from emulator.errors import AlreadyExists, InvalidParameter

IID = "i-0123456789abcdef0"
OPTS = domain.DomainOptions(run_as="+0:+0")


def test_generated_keys_validate_and_have_a_fingerprint():
    private, public = generate_keypair("alice@laptop")
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert validate_public_key(public + "\n") == public
    assert fingerprint(public).startswith("SHA256:")


@pytest.mark.parametrize("bad", [
    "", "ssh-ed25519", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-ed25519 !!!!",
    "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIFZLplmHma42zSPuU1HrBD9005UXJdhn9+sjNBTEiBYw",  # type mismatch
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFZLplmHma42zSPuU1HrBD9005UXJdhn9+sjNBTEiBYw x\n  - injected",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFZLplmHma42zSPuU1HrBD9005UXJdhn9+sjNBTEiBYw bell\x07",
    None, 42,
])
def test_malformed_public_keys_are_refused(bad):
    with pytest.raises(InvalidParameter):
        validate_public_key(bad)


def _echo_server():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                while data := c.recv(4096):
                    c.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return srv


def test_forwarder_relays_and_refuses_while_target_is_unknown():
    srv = _echo_server()
    target = {"addr": ("127.0.0.1", srv.getsockname()[1])}
    fwd = Forwarder()
    try:
        port = fwd.open("i:80", None, lambda: target["addr"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"hello")
            c.shutdown(socket.SHUT_WR)
            assert c.recv(100) == b"HELLO"
        assert fwd.open("i:80", port, lambda: target["addr"]) == port  # idempotent
        with pytest.raises(AlreadyExists):
            fwd.open("j:80", port, lambda: None)
        target["addr"] = None  # instance stopped: accepted, then closed
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.settimeout(5)
            assert c.recv(100) == b""
        fwd.close("i:80")
        with socket.socket() as c:
            assert c.connect_ex(("127.0.0.1", port)) != 0
    finally:
        fwd.close_all()
        srv.close()


def test_domain_xml_escapes_every_value(tmp_path: Path):
    image = {"dir": tmp_path, "kernel": tmp_path / "k<&>", "initrd": None, "disk": tmp_path / "base.qcow2",
             "cmdline": "a='b' </cmdline><x/>",
             "ssh": True, "ready_marker": "ready", "guest_kernel": "6.1"}
    spec = LaunchSpec(IID, "owner\"<&", "web</name>", str(tmp_path), INSTANCE_TYPES["t2.nano"])
    hv = {"mode": "qemu", "domain_type": "qemu", "reason": "r<>"}
    xml = domain.instance_domain_xml(spec, image, hv, tmp_path / "i", "52:54:00:00:00:01", "10.0.0.2",
                                     [PortForward(22, 2222)], {22}, cloud_label="lbl", network_name="net",
                                     opts=OPTS)
    root = ET.fromstring(xml)
    assert root.get("type") == "qemu"
    assert root.findtext("name") == f"pc-{IID}"
    assert root.findtext("os/cmdline") == image["cmdline"]
    assert root.findtext("os/kernel") == str(image["kernel"])
    assert root.find("devices/serial/log").get("file").endswith("console.log")
    assert root.find("devices/interface/source").get("network") == "net"
    assert [d.find("source").get("file") for d in root.findall("devices/disk")] == [
        str(tmp_path / "i" / "root.qcow2"), str(tmp_path / "i" / "seed.iso")]
    assert root.find("seclabel/label").text == "+0:+0" and root.find("cpu") is None
    # libvirt labels the domain's own files for QEMU's user, but never the shared base disk
    assert root.find("seclabel").get("relabel") == "yes"
    backing = root.find("devices/disk/backingStore")
    assert backing.find("source").get("file") == str(image["disk"])
    assert backing.find("source/seclabel").get("relabel") == "no"
    meta = root.find(f"metadata/{{{NS}}}instance")
    assert meta.findtext(f"{{{NS}}}owner") == "owner\"<&"
    assert root.findtext("memory") == "512" and root.findtext("vcpu") == "1"

    on_subnet = ET.fromstring(domain.instance_domain_xml(
        spec, image, hv, tmp_path / "i", "0e:00:00:00:00:01", "10.0.0.5", [], set(), cloud_label="lbl",
        network_name="net", opts=OPTS, bridge="pcb-0123456789a", tap="pct-0123456789a"))
    nic = on_subnet.find("devices/interface")
    assert nic.get("type") == "bridge" and nic.find("source").get("bridge") == "pcb-0123456789a"
    assert nic.find("target").get("dev") == "pct-0123456789a", "a tap name the rules know before the boot"
    assert nic.find("source").get("network") is None


def test_kvm_domains_pass_the_host_cpu_and_tcg_ones_may_cap_their_cache(tmp_path: Path):
    vm = {"kernel": tmp_path / "k", "initrd": tmp_path / "i"}
    kvm = domain.base_domain("d", "kvm", 2, 256, vm, "console=ttyS0", tmp_path / "c.log",
                             domain.DomainOptions("+1:+1", tcg_tb_cache_mib=64))
    assert kvm.find("cpu").get("mode") == "host-passthrough" and kvm.find("features/tcg") is None
    tcg = domain.base_domain("d", "qemu", 2, 256, vm, "", tmp_path / "c.log",
                             domain.DomainOptions("+1:+1", tcg_tb_cache_mib=64, free_page_reporting=False))
    assert tcg.find("features/tcg/tb-cache").text == "64" and tcg.find("cpu") is None
    assert tcg.find("devices/memballoon").get("model") == "none"
    assert tcg.findtext("os/initrd") == str(tmp_path / "i")


def test_metadata_round_trips_and_its_ports_can_be_replaced(tmp_path: Path):
    image = {"dir": tmp_path, "kernel": tmp_path / "k", "initrd": None, "disk": tmp_path / "d", "ssh": True, "ready_marker": "up"}
    spec = LaunchSpec(IID, "acct", "web", str(tmp_path), INSTANCE_TYPES["t2.nano"])
    hv = {"mode": "qemu", "domain_type": "qemu", "reason": "configured"}
    xml = domain.instance_domain_xml(spec, image, hv, tmp_path, domain.mac_for(IID), "10.0.0.9",
                                     [PortForward(22, 2222), PortForward(80, 8080)], {22}, cloud_label="lbl",
                                     network_name="net", opts=OPTS)
    raw = ET.tostring(ET.fromstring(xml).find(f"metadata/{{{NS}}}instance"), encoding="unicode")
    meta = domain.parse_metadata(raw)
    assert (meta["cloud"], meta["instance-id"], meta["ip"], meta["ssh"], meta["ready-marker"]) == (
        "lbl", IID, "10.0.0.9", "yes", "up")
    assert meta["ports"] == [PortForward(22, 2222), PortForward(80, 8080)] and meta["auto_ports"] == {22}
    replaced = domain.metadata_with_ports(raw, [PortForward(22, 2222), PortForward(443, 8443)], {22})
    assert "xmlns" not in replaced, "libvirt adds the namespace itself"
    again = domain.parse_metadata(replaced)
    assert again["ports"] == [PortForward(22, 2222), PortForward(443, 8443)] and again["ip"] == "10.0.0.9"


def test_a_running_guest_that_is_not_ready_is_pending(tmp_path: Path):
    meta = {"ports": [PortForward(80, 8080), PortForward(22, 2222)], "ip": "10.0.0.3", "hypervisor": "qemu"}
    e = domain.engine_instance(f"pc-{IID}", 1, meta, ready=False, inst_dir=tmp_path)
    assert e.state == "pending" and [p.guest for p in e.ports] == [22, 80] and e.private_ip == "10.0.0.3"
    assert domain.engine_instance(f"pc-{IID}", 1, meta, ready=True, inst_dir=tmp_path).state == "running"
    stopped = domain.engine_instance(f"pc-{IID}", 5, meta, ready=False, inst_dir=tmp_path, vcpus_memory=(1, 512))
    assert (stopped.state, stopped.details["engine_status"], stopped.details["memory_mib"]) == ("stopped", "shut off", 512)


def test_network_xml_and_static_addresses_split_the_subnet():
    net = ipaddress.IPv4Network("10.213.7.0/24")
    root = ET.fromstring(domain.network_xml("pctest", net))
    assert root.find("ip").get("address") == "10.213.7.1"
    rng = root.find("ip/dhcp/range")
    assert (rng.get("start"), rng.get("end")) == ("10.213.7.128", "10.213.7.254")
    cands = domain.static_candidates(net, IID)
    assert len(cands) == len(set(cands)) == 126
    assert all(2 <= int(c.rsplit(".", 1)[1]) < 128 for c in cands), "static addresses stay below the dynamic range"
    assert cands == domain.static_candidates(net, IID), "the first choice follows from the instance id"
    host = ET.fromstring(domain.dhcp_host_xml(domain.mac_for(IID), IID, cands[0]))
    assert (host.get("name"), host.get("ip")) == (IID, cands[0])


@pytest.mark.parametrize("bad", ["", "pc-../../etc", "pc-i-123", f"x{IID}", f"pc-{IID}/..", None])
def test_engine_ids_become_paths_only_when_well_formed(bad):
    with pytest.raises(InvalidParameter):
        domain.check_engine_id(bad)
    assert domain.check_engine_id(f"pc-{IID}") == IID


def test_launch_checks_refuse_what_cannot_run_here(tmp_path: Path):
    vm = {"dir": tmp_path, "min_memory_mib": 128}

    def check(**kw):
        args = {"instance_id": IID, "owner": "acct", "name": "web", "image_ref": str(tmp_path),
                "type": INSTANCE_TYPES["t2.nano"], **kw}
        return check_launch(LaunchSpec(**args), vm, host_mib=4096, host_cpus=2)

    _, public = generate_keypair("k")
    assert check(hostname="web_1", ssh_keys=(public + "\n",)) == ("web-1", (public,))
    for kw, words in [({"type": InstanceType("big", 1, 8192)}, "MiB"), ({"type": InstanceType("wide", 4, 256)}, "vCPU"),
                      ({"type": InstanceType("small", 1, 64)}, "at least 128"), ({"instance_id": "i-1"}, "instance id"),
                      ({"ssh_keys": ("ssh-ed25519 AAAA\n  - evil",)}, "SSH public key"),
                      ({"user_data": "a\x00b"}, "NUL"), ({"ports": (PortForward(80, 80),)}, "port forward")]:
        with pytest.raises(InvalidParameter, match=words):
            check(**kw)


def test_the_seed_is_the_same_for_both_kinds_and_cannot_be_injected():
    _, public = generate_keypair("k")
    files = cloudinit.seed_files(IID, "web", "#!/bin/sh\necho hi\n", (public,))
    assert files["meta-data"] == f"instance-id: {IID}\nlocal-hostname: web\npublic-keys:\n  - {public}\n"
    with tarfile.open(fileobj=io.BytesIO(cloudinit.seed_tar(files))) as tar:
        got = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
        assert {m.mode for m in tar.getmembers()} == {0o600}
    assert got == {f"{cloudinit.SEED_DIR}/meta-data": files["meta-data"],
                   f"{cloudinit.SEED_DIR}/user-data": "#!/bin/sh\necho hi\n"}
    for hostname in ("web\nssh_pwauth: true", "a: b", ""):
        with pytest.raises(InvalidParameter):
            cloudinit.meta_data(IID, hostname)
    with pytest.raises(InvalidParameter):
        cloudinit.meta_data(IID, "web", (public + "\n  - ssh-rsa AAAA injected",))
    with pytest.raises(InvalidParameter):
        cloudinit.seed_files(IID, "web", "\x00")


@pytest.mark.parametrize("name,expected", [
    ("web", "web"), ("web_1.prod", "web-1-prod"), ("___", IID), ("a" * 70, "a" * 63),
])
def test_instance_names_become_valid_hostnames(name, expected):
    assert domain.hostname_for(name, IID) == expected
