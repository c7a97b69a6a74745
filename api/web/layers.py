"""Turn GET /instances/ID/internals data into the layered picture of what really runs,
top (your app) to bottom (the host kernel). Shared by the web console and `pocketcloud explain`.

Container: app -> pocketcloud API -> dockerd -> containerd -> shim -> runc -> namespaces + cgroups -> host kernel
VM:        app -> pocketcloud API -> libvirt -> QEMU -> KVM or TCG -> host kernel (the guest has its own kernel)

Each layer: {"key", "title", "subtitle", "facts": [(label, value)], "tone"}; tone groups
layers by who provides them (guest, pocketcloud, engine, isolation, kernel) for colouring.
"""
from __future__ import annotations

from ..text import fmt_size

# What each host daemon behind a VM does, for the layers the driver names without a role.
ROLES = {
    "libvirtd": "the virtualization daemon: keeps each VM's definition (domain XML), starts QEMU, "
                "manages its disks, network and lifecycle",
    "virtlogd": "log daemon: receives each VM's serial console and writes its console log (what "
                "`pocketcloud instances console` shows)",
}


def _cmd(cmdline) -> str:
    if isinstance(cmdline, list):
        return " ".join(cmdline)
    return str(cmdline or "")


def _pids(entry: dict) -> str:
    pids = entry.get("pids") or []
    return ", ".join(str(p) for p in pids) if pids else "-"


def _api_layer(data: dict) -> dict:
    return {"key": "api", "title": "pocketcloud API", "tone": "pocketcloud",
            "subtitle": "REST /api/v1, EC2 Query, console and CLI all call emulator.services",
            "facts": [("instance", data.get("instance_id")),
                      ("type", _type(data))]}


def _type(data: dict) -> str:
    t = data.get("type") or {}
    if isinstance(t, dict):
        return f"{t.get('name')}: {t.get('vcpus')} vCPU, {t.get('memory_mib')} MiB"
    return str(t)


def _kernel_layer(data: dict) -> dict:
    k = data.get("kernel") or {}
    facts = [("host kernel", k.get("host"))]
    if k.get("shared"):
        facts.append(("instance sees", f"{k.get('instance')} (the same kernel: shared)"))
        sub = "one kernel for the host and every container"
    else:
        facts.append(("guest kernel", f"{k.get('instance') or k.get('guest') or '-'} (its own, inside the VM)"))
        sub = "runs QEMU like any process; the guest kernel runs inside the VM"
    return {"key": "kernel", "title": "host Linux kernel", "tone": "kernel", "subtitle": sub, "facts": facts}


def container_layers(data: dict) -> list[dict]:
    out = []
    pid1 = data.get("pid1") or {}
    out.append({"key": "app", "title": "your app (container PID 1)", "tone": "guest",
                "subtitle": _cmd(pid1.get("cmdline")) or "not running",
                "facts": [("PID inside", pid1.get("inside_pid", "-")), ("PID on the host", pid1.get("host_pid", "-")),
                          ("memory in use (RSS)", fmt_size(pid1.get("rss_bytes")))] if pid1 else []})
    out.append(_api_layer(data))
    chain = data.get("runtime_chain") or []
    engine = data.get("engine") or {}
    for entry in chain:
        name = entry.get("name", "")
        if name == "container PID 1":
            continue
        key = name.split()[0]
        facts = [("PID", _pids(entry))]
        if entry.get("cmdline"):
            facts.append(("command", _cmd(entry["cmdline"])))
        sub = {"dockerd": "the Docker daemon: API, images, networks, port publishing",
               "containerd": "container supervisor: keeps containers alive, one shim each",
               "containerd-shim": "per-container parent process: holds stdio, reports exit",
               }.get(key, "")
        if "exited" in name:
            sub = "OCI runtime: created the namespaces and cgroups, exec'd PID 1, then exited"
            facts = [("runtime", engine.get("runtime") or key)]
        if key == "dockerd" and engine.get("container_id"):
            facts.append(("container", f"{engine.get('name_in_engine')} ({engine['container_id'][:12]})"))
        out.append({"key": key, "title": name, "subtitle": sub, "facts": facts, "tone": "engine"})
    ns = data.get("namespaces") or {}
    own = [n for n, v in ns.items() if not v.get("shared_with_host")]
    shared = [n for n, v in ns.items() if v.get("shared_with_host")]
    cg = data.get("cgroup") or {}
    limits = cg.get("limits") or {}
    facts = [("own namespaces", ", ".join(own) or "-"), ("shared with host", ", ".join(shared) or "-")]
    for n in own[:3]:
        facts.append((f"{n} namespace", f"{ns[n].get('instance')} (host: {ns[n].get('host')})"))
    mem = limits.get("memory_limit_bytes") or limits.get("memory_max")
    if mem:
        facts.append(("memory limit (cgroup)", fmt_size(int(mem)) if str(mem).isdigit() else mem))
    if limits.get("memory_usage_bytes") is not None:
        facts.append(("memory used (cgroup)", fmt_size(limits["memory_usage_bytes"])))
    q, p = limits.get("cpu_cfs_quota_us"), limits.get("cpu_cfs_period_us")
    if q and p and q > 0:
        facts.append(("CPU limit (cgroup)", f"{q / p:g} CPU ({q} us per {p} us)"))
    elif limits.get("cpu_max"):
        facts.append(("CPU limit (cgroup)", limits["cpu_max"]))
    if cg.get("version"):
        facts.append(("cgroup version", f"v{cg['version']}"))
    out.append({"key": "isolation", "title": "namespaces + cgroups", "tone": "isolation",
                "subtitle": "kernel features: what the process may see (namespaces) and use (cgroups)",
                "facts": facts})
    out.append(_kernel_layer(data))
    return out


def _qemu_facts(qemu: dict) -> list[tuple[str, str]]:
    facts = []
    if qemu.get("rss_bytes") is not None:
        facts.append(("memory on the host (RSS)", fmt_size(qemu["rss_bytes"])))
    if qemu.get("threads") is not None:
        facts.append(("host threads", str(qemu["threads"])))
    vcpus = qemu.get("vcpu_threads") or []
    if vcpus:
        facts.append(("vCPU threads", ", ".join(f"{t['name']} (tid {t['tid']})" for t in vcpus)))
    return facts


def vm_layers(data: dict) -> list[dict]:
    out = []
    k = data.get("kernel") or {}
    guest = data.get("guest") or {}
    out.append({"key": "app", "title": "your app (inside the guest OS)", "tone": "guest",
                "subtitle": f"guest kernel {k.get('instance') or k.get('guest') or guest.get('kernel') or '?'}, "
                            "its own init, its own memory",
                "facts": [(key, v) for key, v in guest.items() if not isinstance(v, (dict, list))][:6]})
    out.append(_api_layer(data))
    chain = data.get("runtime_chain") or []
    hv = data.get("hypervisor") or {}
    qemu = data.get("qemu") or {}
    if chain:
        for entry in chain:
            name = entry.get("name", "")
            facts = [("PID", _pids(entry))] + ([("command", _cmd(entry["cmdline"]))] if entry.get("cmdline") else [])
            subtitle = entry.get("role") or ROLES.get(name, "")
            if name.startswith("qemu") and qemu:
                subtitle = "one host process per VM: emulates the machine's devices (virtio disk, net, serial)"
                facts += _qemu_facts(qemu)
            out.append({"key": name.split()[0].lower(), "title": name, "tone": "engine",
                        "subtitle": subtitle, "facts": facts})
    else:
        eng = data.get("engine") or {}
        out.append({"key": "libvirt", "title": "libvirt (libvirtd)", "tone": "engine",
                    "subtitle": "manages the domain: XML definition, disks, network, lifecycle",
                    "facts": [(key, v) for key, v in eng.items() if not isinstance(v, (dict, list))][:6]})
        qfacts = [("PID", qemu.get("pid") or data.get("qemu_pid") or "-")]
        if qemu.get("cmdline"):
            qfacts.append(("command", _cmd(qemu["cmdline"])[:300]))
        qfacts += _qemu_facts(qemu)
        out.append({"key": "qemu", "title": "QEMU", "tone": "engine",
                    "subtitle": "one host process per VM: emulates the machine's devices (virtio disk, net, serial)",
                    "facts": qfacts})
    mode = hv.get("mode") or hv.get("in_use") or hv.get("domain_type")
    accel = hv.get("accelerator") or ("KVM (hardware virtualization)" if mode == "kvm" else
                                      "TCG (software emulation)" if mode == "qemu" else "?")
    out.append({"key": "accel", "title": "KVM" if mode == "kvm" else "TCG" if mode == "qemu" else "KVM or TCG",
                "tone": "isolation",
                "subtitle": accel + (": guest code runs on the CPU directly, trapped by /dev/kvm" if mode == "kvm" else
                                     ": QEMU translates guest instructions in software" if mode == "qemu" else ""),
                "facts": [("why", hv.get("reason", "-"))]})
    out.append(_kernel_layer(data))
    return out


def layers(data: dict) -> list[dict]:
    return vm_layers(data) if data.get("kind") == "vm" else container_layers(data)


def extras(data: dict) -> list[tuple[str, str]]:
    """Facts beside the stack: the root filesystem (layers or disks)."""
    out = []
    rootfs = data.get("rootfs") or {}
    if rootfs:
        out.append(("root filesystem", f"{rootfs.get('storage_driver', '-')} over image {rootfs.get('image', '-')}"))
        if rootfs.get("image_layers") is not None:
            out.append(("image layers (read-only)", str(len(rootfs["image_layers"]))))
        if rootfs.get("image_size_bytes") is not None:
            out.append(("image size", fmt_size(rootfs["image_size_bytes"])))
        upper = (rootfs.get("layers") or {}).get("UpperDir")
        if upper:
            out.append(("writable layer", upper))
    for i, layer in enumerate(data.get("disk_chain") or []):
        role = "overlay (this VM's writes)" if i == 0 else "base image (read-only, shared)"
        out.append((f"disk: {role}", f"{layer.get('file')} — {fmt_size(layer.get('size_on_disk_bytes'))} on disk, "
                                     f"{fmt_size(layer.get('virtual_size_bytes'))} virtual"))
    net = data.get("network") or {}
    if net.get("tap"):
        out.append(("network path", f"{net['tap']} (tap) → {net.get('bridge') or '?'} (bridge of libvirt network "
                                    f"{net.get('libvirt_network')}, {net.get('subnet')}) → NAT"))
    for fwd in net.get("forwards") or []:
        out.append(("port forward", f"{fwd['host']} → {fwd['guest']} ({fwd['via']})"))
    return out + vpc_path(data.get("vpc_path"))


def vpc_path(p: dict | None) -> list[tuple[str, str]]:
    """VPC networking: interface → bridge → the cloud's chains (live rule counters) → NAT/forwards."""
    if not p:
        return []
    out = [("network path", f"{p['interface'] or '(not running)'} ({p['interface_kind']}, pinned to {p['ip']} / "
                            f"{p['mac']}) → {p['bridge']} (bridge of {p['subnet']} in {p['vpc']}) → nft table "
                            f"{p['table']}: {' / '.join(p['chains'])} → {p['nat']}")]
    for g in p["groups"]:
        for r in g["rules"]:
            out.append((f"{g['id']} {r['direction']}", f"{r['rule']}: {r['packets']} packets, {r['bytes']} bytes"))
    out.append(("dropped by its groups", f"in {p['dropped']['ingress']['packets']}, "
                                         f"out {p['dropped']['egress']['packets']} packets"))
    for f in p["forwards"]:
        out.append(("forward (kernel DNAT)", f"{f['host']} → {p['ip']}:{f['guest']}/{f['protocol']}: "
                                             f"{f['packets']} packets"))
    return out
