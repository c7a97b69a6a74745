"""VM driver parts that need no engine: key checks, the TCP forwarder, domain XML."""
from __future__ import annotations

import socket
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator.compute.driver import LaunchSpec, PortForward
from emulator.compute.forwarder import Forwarder
from emulator.compute.libvirt_driver import NS, LibvirtDriver
from emulator.compute.sshkeys import fingerprint, generate_keypair, validate_public_key
from emulator.compute.types import INSTANCE_TYPES
from emulator.errors import AlreadyExists, InvalidParameter


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
    d = LibvirtDriver("qemu:///system", "lbl", tmp_path, hypervisor="qemu")
    image = {"dir": tmp_path, "kernel": tmp_path / "k<&>", "initrd": None, "cmdline": "a='b' </cmdline><x/>",
             "ssh": True, "ready_marker": "ready", "guest_kernel": "6.1"}
    spec = LaunchSpec("i-0123456789abcdef0", "owner\"<&", "web</name>", str(tmp_path), INSTANCE_TYPES["t2.nano"])
    hv = {"mode": "qemu", "domain_type": "qemu", "reason": "r<>"}
    xml = d._domain_xml(spec, image, hv, tmp_path / "i", "52:54:00:00:00:01", "10.0.0.2",
                        [PortForward(22, 2222)], {22})
    root = ET.fromstring(xml)
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "pc-i-0123456789abcdef0"
    assert root.findtext("os/cmdline") == image["cmdline"]
    assert root.findtext("os/kernel") == str(image["kernel"])
    assert root.find("devices/serial/log").get("file").endswith("console.log")
    meta = root.find(f"metadata/{{{NS}}}instance")
    assert meta.findtext(f"{{{NS}}}owner") == "owner\"<&"
    assert root.findtext("memory") == "512" and root.findtext("vcpu") == "1"


@pytest.mark.parametrize("name,expected", [
    ("web", "web"), ("web_1.prod", "web-1-prod"), ("___", "i-0123456789abcdef0"), ("a" * 70, "a" * 63),
])
def test_instance_names_become_valid_hostnames(name, expected):
    assert LibvirtDriver._hostname(name, "i-0123456789abcdef0") == expected
