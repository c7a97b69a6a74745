#!/usr/bin/env python3
"""tiny VM boot: POST /api/v1/instances vs a raw `virsh create`, same run, same host.

Both sides boot the same kernel, initrd and qcow2 base (a fresh overlay and NoCloud seed
each time, on the same libvirt NAT network), and the clock stops at the same readiness:
an SSH server banner answering (through the 127.0.0.1 forward for pocketcloud, at the
guest's DHCP address for raw virsh). Also: qemu's RSS for an idle tiny VM vs the memory
cgroup usage of an idle tiny container.

    .venv/bin/python bench/vm_boot.py [--runs 5]

Needs root (or libvirt + docker access), libvirtd, dockerd, the tiny recipe's packages.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import libvirt  # noqa: E402

from emulator.compute.types import INSTANCE_TYPES  # noqa: E402
from tests.integration.cloud import Server  # noqa: E402

TYPE = INSTANCE_TYPES["t2.nano"]


def banner(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_banner(host: str, port: int, deadline: float) -> None:
    while not banner(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no SSH banner at {host}:{port}")
        time.sleep(0.1)


def pocketcloud_boot(api) -> tuple[float, str]:
    t0 = time.monotonic()
    inst = api.ok("POST", "/instances", 201, json={"image": "tiny", "kind": "vm", "type": TYPE.name})
    port = next(p["host"] for p in inst["ports"] if p["guest"] == 22)
    wait_banner("127.0.0.1", port, t0 + 120)
    return time.monotonic() - t0, inst["id"]


def raw_boot(conn, tiny: Path, network: str, scratch: Path) -> float:
    """What a person would do by hand: overlay, seed ISO, `virsh create`, wait for SSH."""
    import json

    vm = json.loads((tiny / "vm.json").read_text())
    name = f"raw-bench-{secrets.token_hex(4)}"
    d = scratch / name
    d.mkdir()
    mac = "52:54:00:%02x:%02x:%02x" % tuple(secrets.token_bytes(3))
    t0 = time.monotonic()
    try:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(tiny / vm["disk"]), "-F", "qcow2",
                        str(d / "root.qcow2")], check=True)
        (d / "meta-data").write_text(f"instance-id: {name}\nlocal-hostname: {name}\n")
        (d / "user-data").write_text("")
        subprocess.run(["genisoimage", "-quiet", "-output", str(d / "seed.iso"), "-volid", "cidata", "-joliet",
                        "-rock", str(d / "meta-data"), str(d / "user-data")], check=True)
        xml = f"""<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>{TYPE.memory_mib}</memory><vcpu>{TYPE.vcpus}</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{tiny / vm['kernel']}</kernel>
    <initrd>{tiny / vm['initrd']}</initrd><cmdline>{vm['cmdline']}</cmdline></os>
  <features><acpi/><apic/></features><on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{d}/root.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{d}/seed.iso'/><target dev='vdb' bus='virtio'/><readonly/></disk>
    <interface type='network'><mac address='{mac}'/><source network='{network}'/><model type='virtio'/></interface>
    <serial type='file'><source path='{d}/console.log'/></serial>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng><memballoon model='none'/>
  </devices>
  <seclabel type='static' model='dac' relabel='no'><label>+{os.getuid()}:+{os.getgid()}</label></seclabel>
</domain>"""
        (d / "domain.xml").write_text(xml)
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "create", str(d / "domain.xml")], check=True,
                       stdout=subprocess.DEVNULL)
        net = conn.networkLookupByName(network)
        ip = None
        while ip is None:
            if time.monotonic() - t0 > 120:
                raise TimeoutError("raw VM got no DHCP lease")
            ip = next((lease["ipaddr"] for lease in net.DHCPLeases(mac) or []), None)
            if ip is None:
                time.sleep(0.1)
        wait_banner(ip, 22, t0 + 120)
        return time.monotonic() - t0
    finally:
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "destroy", name], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def container_memory(tiny: Path) -> int:
    import docker

    client = docker.from_env()
    tag = f"pocketcloud-bench/tiny:{tiny.name}"
    with open(tiny / "rootfs.tar", "rb") as f:
        client.api.import_image_from_data(f, repository=tag.split(":")[0], tag=tiny.name,
                                          changes=['CMD ["/sbin/init"]'])
    c = client.containers.run(tag, detach=True, mem_limit=f"{TYPE.memory_mib}m")
    try:
        time.sleep(5)
        stats = c.stats(stream=False)["memory_stats"]
        usage = stats.get("usage", 0)
        cache = stats.get("stats", {}).get("cache", 0) or stats.get("stats", {}).get("inactive_file", 0)
        return usage - cache
    finally:
        c.remove(force=True)
        client.images.remove(tag, force=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    srv = Server(scratch / "home", scratch)
    try:
        srv.cli("images", "build", "tiny")
        srv.start()
        api = srv.admin
        tiny = Path(next(i for i in api.ok("GET", "/images")["images"] if i["name"] == "tiny")["kinds"]["vm"]["ref"])
        conn = libvirt.open("qemu:///system")
        ours, raw = [], []
        idle_rss = None
        # warm-up: the hypervisor choice (auto probes KVM once), the network, the page cache
        secs, iid = pocketcloud_boot(api)
        api.ok("DELETE", f"/instances/{iid}")
        hv = api.ok("GET", "/info")["hypervisor"]
        print(f"hypervisor: {hv['mode']} ({hv['reason']})")
        print(f"image: tiny ({tiny}), type {TYPE.name}: {TYPE.vcpus} vCPU, {TYPE.memory_mib} MiB")
        raw_boot(conn, tiny, srv.vm_network, scratch)
        for i in range(args.runs):
            # Alternate the order so drift on the host hurts both sides alike.
            for side in (("ours", "raw") if i % 2 == 0 else ("raw", "ours")):
                if side == "raw":
                    raw.append(raw_boot(conn, tiny, srv.vm_network, scratch))
                else:
                    secs, iid = pocketcloud_boot(api)
                    ours.append(secs)
                    if idle_rss is None:
                        time.sleep(5)
                        idle_rss = api.ok("GET", f"/instances/{iid}/internals")["summary"]["host_memory_bytes"]
                    api.ok("DELETE", f"/instances/{iid}")
            print(f"  run {i + 1}: pocketcloud {ours[-1]:.2f}s, raw virsh {raw[-1]:.2f}s", flush=True)
        mo, mr = statistics.median(ours), statistics.median(raw)
        print(f"POST /instances to SSH-ready, median of {args.runs}: pocketcloud {mo:.2f}s, "
              f"raw virsh create {mr:.2f}s, ratio {mo / mr:.2f} (target <= 1.2)")
        cmem = container_memory(tiny)
        if idle_rss:
            print(f"idle tiny memory: VM qemu RSS {idle_rss / 2**20:.1f} MiB vs container {cmem / 2**20:.1f} MiB "
                  f"(ratio {idle_rss / max(cmem, 1):.0f}x)")
    finally:
        srv.stop()
        try:
            net = libvirt.open("qemu:///system").networkLookupByName(srv.vm_network)
            net.destroy()
            net.undefine()
        except libvirt.libvirtError:
            pass
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
