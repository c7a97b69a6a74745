"""What the host itself says about processes, namespaces and cgroups, read live from
/proc and /sys (the ground truth behind every engine)."""
from __future__ import annotations

import os
import platform
from pathlib import Path

NAMESPACES = ("pid", "net", "mnt", "uts", "ipc", "user", "cgroup")
PROC = Path("/proc")


def _read(path: Path | str, default: str | None = None) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return default


def _user_name(uid: int | None) -> str | None:
    import pwd

    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def process(pid: int) -> dict:
    """Command line, parent, threads and resident memory of a host process."""
    base = PROC / str(pid)
    status = _read(base / "status") or ""
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    cmdline = (_read(base / "cmdline") or "").split("\0")
    rss_kib = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else None
    uid = int(fields["Uid"].split()[1]) if "Uid" in fields else None  # the effective uid
    return {
        "pid": pid,
        "uid": uid,
        "user": _user_name(uid),
        "name": fields.get("Name", "").strip(),
        "ppid": int(fields.get("PPid", "0").strip() or 0),
        "cmdline": [c for c in cmdline if c],
        "threads": int(fields.get("Threads", "0").strip() or 0),
        "rss_bytes": rss_kib * 1024 if rss_kib is not None else None,
        "exists": base.exists(),
    }


def ancestors(pid: int, stop_at: int = 1) -> list[dict]:
    """The chain of parents of a process, nearest first, up to (not including) PID 1."""
    chain, seen = [], set()
    pid = process(pid)["ppid"]
    while pid and pid != stop_at and pid not in seen:
        seen.add(pid)
        p = process(pid)
        if not p["exists"]:
            break
        chain.append({k: p[k] for k in ("pid", "name", "cmdline")})
        pid = p["ppid"]
    return chain


def find_processes(name: str) -> list[int]:
    out = []
    for d in PROC.iterdir():
        if d.name.isdigit() and (_read(d / "comm") or "").strip() == name:
            out.append(int(d.name))
    return sorted(out)


def namespaces(pid: int, reference: int | None = None) -> dict:
    """Each namespace of `pid` next to the host's (those pocketcloud itself runs in): inode
    numbers and same/different."""
    reference = reference or os.getpid()
    out = {}
    for ns in NAMESPACES:
        try:
            mine = os.readlink(PROC / str(pid) / "ns" / ns)
            host = os.readlink(PROC / str(reference) / "ns" / ns)
        except OSError as e:
            out[ns] = {"error": f"unreadable: {e.strerror} (reading another process's namespaces needs root)"}
            continue
        out[ns] = {"instance": mine, "host": host, "shared_with_host": mine == host}
    return out


def cgroups(pid: int) -> dict:
    """The process's cgroup paths and the memory/CPU limits in force there."""
    paths = {}
    for line in (_read(PROC / str(pid) / "cgroup") or "").splitlines():
        _, controllers, path = line.split(":", 2)
        for c in (controllers or "unified").split(","):
            paths[c] = path
    root = Path("/sys/fs/cgroup")
    limits: dict = {}
    if "unified" in paths and (root / "cgroup.controllers").exists():
        d = root / paths["unified"].lstrip("/")
        limits["memory_max"] = (_read(d / "memory.max") or "").strip() or None
        limits["cpu_max"] = (_read(d / "cpu.max") or "").strip() or None
        limits["memory_usage_bytes"] = _int(_read(d / "memory.current"))
        version = 2
    else:
        mem = root / "memory" / paths.get("memory", "/").lstrip("/")
        cpu = root / "cpu" / paths.get("cpu", "/").lstrip("/")
        limits["memory_limit_bytes"] = _int(_read(mem / "memory.limit_in_bytes"))
        limits["memory_usage_bytes"] = _int(_read(mem / "memory.usage_in_bytes"))
        limits["cpu_cfs_quota_us"] = _int(_read(cpu / "cpu.cfs_quota_us"))
        limits["cpu_cfs_period_us"] = _int(_read(cpu / "cpu.cfs_period_us"))
        version = 1
    return {"version": version, "paths": paths, "limits": limits}


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text else None
    except ValueError:
        return None


def host() -> dict:
    """The machine pocketcloud runs on: kernel, CPU virtualization, and whether it is itself a VM."""
    cpuinfo = _read("/proc/cpuinfo") or ""
    flags = set()
    model = None
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and not flags:
            flags = set(line.split(":", 1)[1].split())
        if line.startswith("model name") and model is None:
            model = line.split(":", 1)[1].strip()
    vendor = (_read("/sys/class/dmi/id/sys_vendor") or "").strip() or None
    product = (_read("/sys/class/dmi/id/product_name") or "").strip() or None
    in_vm = "hypervisor" in flags
    return {
        "kernel": platform.release(),
        "os": _os_release(),
        "cpu": {"model": model, "count": os.cpu_count(),
                "virtualization_flags": sorted(flags & {"vmx", "svm"}),
                "hypervisor_flag": in_vm},
        "runs_in_vm": in_vm,
        "explanation": ("the CPU reports the 'hypervisor' flag: pocketcloud itself runs inside a virtual machine, "
                        "so its VMs are nested, as on a public cloud" if in_vm else
                        "no 'hypervisor' CPU flag: pocketcloud runs on bare metal"),
        "dmi": {"vendor": vendor, "product": product},
        "kvm_device": os.path.exists("/dev/kvm"),
        "memory": memory(),
    }


def memory() -> dict:
    info = {}
    for line in (_read("/proc/meminfo") or "").splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            info[key] = int(rest.split()[0]) * 1024
    total, avail = info.get("MemTotal"), info.get("MemAvailable")
    return {"total_bytes": total, "available_bytes": avail,
            "used_bytes": total - avail if total is not None and avail is not None else None}


def _os_release() -> str | None:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return None
