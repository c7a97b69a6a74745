#!/usr/bin/env python3
"""tiny VM boot: POST /api/v1/instances through a real `pocketcloud serve` vs the same
guest started straight through libvirt, same run, same host.

Like for like: the raw side asks libvirt for exactly what pocketcloud asks it for, with
nothing of pocketcloud's own around it. Both sides:
  - boot the same kernel, initrd and qcow2 base, each time on a fresh overlay
    (`qemu-img create`) and a fresh NoCloud seed ISO (`genisoimage`), the same processes;
  - use the same domain definition (pocketcloud's pure XML builder: same devices, same
    accelerator: the domain type pocketcloud chose, KVM where it uses KVM);
  - reserve a static DHCP address on the same libvirt network before the boot (the same
    live network update, so dnsmasq is reloaded on both sides);
  - stop the clock at the same readiness: an SSH server banner (raw: at the guest's
    address; pocketcloud: through its 127.0.0.1 forward, after it has seen it itself).
The raw side talks to libvirtd over a connection opened before the clock starts (no
process start); `virsh create` would add a virsh process start and connect, which is
measured on its own row. What remains in the difference is pocketcloud's: HTTP and
auth, the record, a persistent define + start instead of a transient create, the
readiness watch (console marker, then the banner), the forward.
Also: the RSS of an idle tiny VM's QEMU vs the memory of an idle tiny container.

    .venv/bin/python bench/vm_boot.py [--runs 5] [--json PATH]

Needs root (or libvirt + docker access), libvirtd, dockerd, the tiny recipe's packages.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
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

from bench.report import emit, row  # noqa: E402
from emulator.compute import cloudinit  # noqa: E402
from emulator.compute.driver import LaunchSpec  # noqa: E402
from emulator.compute.libvirt import domain, guest  # noqa: E402
from emulator.compute.libvirt.image import load_vm_image  # noqa: E402
from emulator.compute.sshkeys import generate_keypair  # noqa: E402
from emulator.compute.types import INSTANCE_TYPES  # noqa: E402
from emulator.validation import new_instance_id  # noqa: E402
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
        time.sleep(0.05)


def pocketcloud_boot(api) -> tuple[float, str]:
    t0 = time.monotonic()
    inst = api.ok("POST", "/instances", 201, json={"image": "tiny", "kind": "vm", "type": TYPE.name})
    # The launch answers pending at once; the VM is up when the API says running (its SSH
    # forward answers then), as a client polling GET sees it.
    inst = api.wait_state(inst["id"], "running", timeout=180)
    port = next(p["host"] for p in inst["ports"] if p["guest"] == 22)
    wait_banner("127.0.0.1", port, t0 + 180)
    return time.monotonic() - t0, inst["id"]


class RawBoot:
    """The same guest, through libvirt directly (see the module docstring)."""

    def __init__(self, conn, tiny: Path, network: str, subnet: str, hv: dict, scratch: Path):
        self.conn, self.network, self.hv, self.scratch = conn, network, hv, scratch
        self.vm = load_vm_image(str(tiny))
        self.subnet = ipaddress.IPv4Network(subnet)
        self.public_key = generate_keypair("bench")[1]  # the seed carries a key, as pocketcloud's does

    def boot(self) -> float:
        iid = new_instance_id()
        name = f"raw-bench-{iid[2:10]}"
        d = self.scratch / name
        mac = domain.mac_for(iid, salt=1)
        net = self.conn.networkLookupByName(self.network)
        host_xml = None
        t0 = time.monotonic()
        try:
            d.mkdir()
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.vm["disk"]), "-F", "qcow2",
                            str(d / "root.qcow2")], check=True)
            guest.write_seed_iso(d, cloudinit.seed_files(iid, name, "", (self.public_key,)))
            used = {h.get("ip") for h in ET.fromstring(net.XMLDesc(0)).iter("host")}
            ip = next(c for c in domain.static_candidates(self.subnet, iid) if c not in used)
            host_xml = domain.dhcp_host_xml(mac, name, ip)
            net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1,
                       host_xml, libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE)
            spec = LaunchSpec(iid, "bench", name, str(self.vm["dir"]), TYPE)
            root = ET.fromstring(domain.instance_domain_xml(
                spec, self.vm, self.hv, d, mac, ip, [], set(), cloud_label="raw-bench", network_name=self.network,
                opts=domain.DomainOptions(run_as=f"+{os.getuid()}:+{os.getgid()}")))
            root.find("name").text = name
            root.remove(root.find("metadata"))  # pocketcloud's bookkeeping: not the raw side's
            self.conn.createXML(ET.tostring(root, encoding="unicode"), 0)
            wait_banner(ip, 22, t0 + 180)
            return time.monotonic() - t0
        finally:
            try:
                self.conn.lookupByName(name).destroy()
            except libvirt.libvirtError:
                pass
            if host_xml:
                net.update(libvirt.VIR_NETWORK_UPDATE_COMMAND_DELETE, libvirt.VIR_NETWORK_SECTION_IP_DHCP_HOST, -1,
                           host_xml, libvirt.VIR_NETWORK_UPDATE_AFFECT_LIVE)
            shutil.rmtree(d, ignore_errors=True)


def virsh_start_cost(runs: int = 10) -> float:
    """What `virsh create` adds over a warm connection: a virsh process start and connect."""
    times = []
    for _ in range(runs):
        t = time.monotonic()
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "version"], check=True, capture_output=True)
        times.append(time.monotonic() - t)
    return statistics.median(times)


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
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    srv = Server(scratch / "home", scratch)
    try:
        srv.cli("images", "build", "tiny")
        srv.start()
        api = srv.admin
        tiny = Path(next(i for i in api.ok("GET", "/images")["images"] if i["name"] == "tiny")["kinds"]["vm"]["ref"])
        conn = libvirt.open("qemu:///system")
        # Warm-up: the hypervisor choice (auto mode probes KVM once), the network, the page cache.
        _, iid = pocketcloud_boot(api)
        api.ok("DELETE", f"/instances/{iid}")
        hv = api.ok("GET", "/info")["hypervisor"]
        raw = RawBoot(conn, tiny, srv.vm_network, srv.vm_cidr, hv, scratch)
        raw.boot()
        print(f"hypervisor: {hv['mode']} ({hv['reason']}); both sides use domain type {hv['domain_type']}")
        print(f"image: tiny ({tiny}), type {TYPE.name}: {TYPE.vcpus} vCPU, {TYPE.memory_mib} MiB")
        ours, raws = [], []
        idle_rss = None
        for i in range(args.runs):
            # Alternate the order so drift on the host hurts both sides alike.
            for side in (("ours", "raw") if i % 2 == 0 else ("raw", "ours")):
                if side == "raw":
                    raws.append(raw.boot())
                    continue
                secs, iid = pocketcloud_boot(api)
                ours.append(secs)
                if idle_rss is None:
                    time.sleep(5)
                    idle_rss = api.ok("GET", f"/instances/{iid}/internals")["summary"]["host_memory_bytes"]
                api.ok("DELETE", f"/instances/{iid}")
            print(f"  run {i + 1}: pocketcloud {ours[-1]:.2f}s, raw libvirt {raws[-1]:.2f}s", flush=True)
        mo, mr = statistics.median(ours), statistics.median(raws)
        rows = [
            row("tiny VM boot to SSH banner (median)", mo, mr, "s",
                f"median of {args.runs}, {hv['mode']} on both sides; pocketcloud {min(ours):.2f}-{max(ours):.2f}, "
                f"raw {min(raws):.2f}-{max(raws):.2f}"),
            row("virsh process start + connect (what `virsh create` adds to raw)", virsh_start_cost(), None, "s",
                "not in the raw figure above, which uses a warm libvirt connection"),
        ]
        cmem = container_memory(tiny)
        if idle_rss:
            rows.append(row("idle tiny memory: VM's QEMU RSS (raw: container)", idle_rss / 2**20, cmem / 2**20,
                            "MiB", "raw here is an idle tiny container's memory cgroup usage, not a VM"))
        emit("vm_boot", rows, args.json)
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
