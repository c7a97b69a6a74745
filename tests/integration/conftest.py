"""Helpers for the integration tests; the real-server fixtures live in tests/conftest.py."""
from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from emulator.compute.engines import build_drivers
from emulator.config import Config

from .cloud import Server, vm_area


def pc_containers(docker_client, server) -> list:
    label = Config(home=Path(server.home)).instance_label
    return docker_client.containers.list(all=True, filters={"label": f"pocketcloud.cloud={label}"})


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def listening_ports(srv: Server) -> list[str]:
    """TCP ports the server's processes listen on (its gunicorn worker holds the forwards)."""
    pids = set()
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and os.getsid(int(d.name)) == srv.proc.pid:
                pids.add(d.name)
        except OSError:
            continue
    ports = set()
    for line in run(["ss", "-ltnpH"]).stdout.splitlines():
        if set(re.findall(r"pid=(\d+),", line)) & pids:
            ports.add(line.split()[3].rsplit(":", 1)[1])
    assert ports, "the server listens at least on its API port"
    return sorted(ports)


def subnet_reservations(srv: Server) -> list[str]:
    """With VPC networking a VM's DHCP reservation is in its subnet's dnsmasq (pocketcloud's, one
    per subnet), not in the libvirt network: each running one's reserved addresses, named by the
    live instance holding the address (an address no live instance holds is listed as itself)."""
    from emulator.networks import dhcp

    state = Path(srv.home) / "net" / "dhcp"
    if not dhcp.running(state):
        return []
    owner = {i["private_ip"]: i["id"] for i in srv.admin.ok("GET", "/instances", params={"all": "1"})["instances"]
             if i["state"] != "terminated" and i["private_ip"]}
    out = []
    for pid in dhcp.running(state).values():
        conf = next(a.split(b"=", 1)[1] for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    if a.startswith(b"--conf-file="))
        for line in Path(conf.decode()).read_text().splitlines():
            if line.startswith("dhcp-host="):
                ip = line.split("=", 1)[1].split(",")[1]
                out.append(owner.get(ip, ip))
    return out


def engine_snapshot(srv: Server, config: Config, docker_client) -> dict:
    """Everything a launch could leave behind on the engines and the host."""
    dumped = run(["virsh", "-c", "qemu:///system", "net-dumpxml", srv.vm_network])
    net = ET.fromstring(dumped.stdout if dumped.returncode == 0 else "<network/>")  # none before the first VM
    return {
        "containers": sorted(c.name for c in pc_containers(docker_client, srv)),
        "domains": sorted(e.engine_id for e in build_drivers(config)["vm"].list_managed(config.instance_label).values()),
        "instance dirs": sorted(p.name for p in (vm_area(srv.home) / "instances").glob("*")),
        "dhcp reservations": sorted([h.get("name") for h in net.iter("host")] + subnet_reservations(srv)),
        "server's listening ports": listening_ports(srv),
    }
