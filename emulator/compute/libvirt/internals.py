"""What really runs behind a VM, read live from libvirt, /proc and qemu-img: the
hypervisor and why, the domain XML, the QEMU process and its vCPU threads, guest vs host
kernel, the disk chain and the network path."""
from __future__ import annotations

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from .. import hostinfo
from . import domain
from .guest import read_text
from .probe import ACCELERATORS

PID_DIRS = ("/run/libvirt/qemu", "/var/run/libvirt/qemu")


def qemu_pid(engine_id: str) -> int | None:
    """The QEMU process of a running domain, from the pid file libvirtd keeps."""
    for d in PID_DIRS:
        try:
            return int(Path(d, f"{engine_id}.pid").read_text().strip())
        except (OSError, ValueError):
            continue
    return None


def vcpu_threads(pid: int) -> list[dict]:
    threads = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*"), key=lambda p: int(p.name)):
        name = read_text(task / "comm").strip()
        if name.startswith("CPU "):
            threads.append({"tid": int(task.name), "name": name})
    return threads


def disk_chain(overlay: Path) -> list[dict]:
    """The overlay and every backing file below it, with their sizes on disk."""
    chain = []
    try:
        out = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output", "json", str(overlay)],
                             capture_output=True, text=True, timeout=30)
        for layer in json.loads(out.stdout or "[]"):
            chain.append({"file": layer.get("filename"), "format": layer.get("format"),
                          "virtual_size_bytes": layer.get("virtual-size"),
                          "size_on_disk_bytes": layer.get("actual-size"),
                          "backing_file": layer.get("backing-filename")})
    except (OSError, ValueError, subprocess.SubprocessError):
        pass
    return chain


def dac_label(root: ET.Element) -> str | None:
    """The user:group libvirt runs the domain's QEMU as (the live XML shows the one in use)."""
    for sec in root.findall("seclabel"):
        if sec.get("model") == "dac":
            label = sec.find("label")
            return label.text if label is not None else None
    return None


def guest_kernel(meta: dict, console: str) -> str | None:
    """The kernel the guest says it booted (tiny's init prints it), else the image's claim."""
    m = re.search(r"kernel (\S+)", console[console.rfind("pocketcloud-init: booting"):]) if console else None
    return m.group(1).rstrip(",") if m else (meta.get("guest-kernel") or None)


def guest_identity(root: ET.Element, instance_id: str) -> dict:
    """What the guest reads from its DMI, and so which datasource the debian-12 image's
    cloud-init picks: an `ec2` UUID naming this instance with an equal serial means Ec2."""
    uuid = root.findtext("uuid") or ""
    serial = root.findtext("sysinfo/system/entry[@name='serial']")
    ec2 = bool(uuid) and domain.instance_for_uuid(uuid) == instance_id and (serial or "").lower() == uuid.lower()
    return {"smbios_uuid": uuid or None, "smbios_serial": serial, "ec2": ec2,
            "cloud_init_datasource": "Ec2 (169.254.169.254)" if ec2 else "NoCloud (the cidata seed disk)"}


def describe(*, engine_id: str, uri: str, xml: str, active: bool, meta: dict, inst_dir: Path, bridge: str | None,
             network_name: str, subnet: str) -> dict:
    root = ET.fromstring(xml)
    pid = qemu_pid(engine_id) if active else None
    qemu = hostinfo.process(pid) if pid else None
    chain = disk_chain(inst_dir / "root.qcow2")
    kernel = guest_kernel(meta, read_text(inst_dir / "console.log"))
    mode = root.get("type")
    hv = {"mode": mode, "reason": meta.get("hypervisor-reason"), "accelerator": ACCELERATORS.get(mode, ACCELERATORS["qemu"])}
    summary = {
        "isolation": f"hardware virtualization boundary: QEMU with {hv['accelerator']}, its own kernel",
        "kernel": kernel,
        "host_pid": pid,
        "host_process": " ".join((qemu or {}).get("cmdline", [])[:3]) + " ..." if qemu else None,
        "host_memory_bytes": (qemu or {}).get("rss_bytes"),
        "host_user": (qemu or {}).get("user"),
        "image_size_bytes": sum(layer["size_on_disk_bytes"] or 0 for layer in chain) or None,
    }
    return {
        "isolation": summary["isolation"],
        "engine": {"name": "libvirt", "uri": uri, "domain": engine_id},
        "hypervisor": hv,
        "domain_xml": xml,
        "qemu": ({"pid": pid, "user": qemu["user"], "uid": qemu["uid"], "dac_label": dac_label(root),
                  "cmdline": qemu["cmdline"], "threads": qemu["threads"], "vcpu_threads": vcpu_threads(pid),
                  "rss_bytes": qemu["rss_bytes"]} if qemu else None),
        "kernel": {"guest": kernel, "host": os.uname().release, "shared": False},
        "disk_chain": chain,
        "guest_identity": guest_identity(root, meta.get("instance-id") or ""),
        "network": {"tap": domain.interface_target(xml), "bridge": bridge, "libvirt_network": network_name,
                    "subnet": subnet, "private_ip": meta.get("ip") or None,
                    "forwards": [{"host": f"127.0.0.1:{p.host}", "guest": f"{meta.get('ip')}:{p.guest}",
                                  "via": "pocketcloud's in-process TCP forwarder"} for p in meta.get("ports", [])]},
        "runtime_chain": [{"name": n, "pids": hostinfo.find_processes(n)} for n in ("libvirtd", "virtlogd")]
                         + ([{"name": "qemu-system-x86_64", "pids": [pid]}] if pid else []),
        "running": bool(pid),
        "summary": summary,
    }
