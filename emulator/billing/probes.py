"""What the engines really used: CPU time, memory and bytes sent, read live.

Containers: the container's cgroup (v1 cpuacct/memory, or v2 cpu.stat/memory.current) by its
Docker id, and its network namespace's counters through a process in it (/proc/PID/net/dev).
VMs: libvirt's bulk domain stats (cpu.time, balloon.rss, net.N.tx.bytes, which libvirt reports
from the guest's side of the tap). Counters are cumulative since the instance (re)started;
the meter keeps the last value and bills deltas. Nothing here raises: a probe that cannot read
answers None and the meter skips that sample.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("pocketcloud.billing")
CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Sample:
    at: float
    cpu_ns: int | None
    mem_bytes: int | None
    tx_bytes: int | None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat(path: Path) -> dict[str, int]:
    out = {}
    try:
        for line in path.read_text().splitlines():
            k, _, v = line.partition(" ")
            if v.strip().isdigit():
                out[k] = int(v)
    except OSError:
        pass
    return out


def _tx_bytes(pid: int) -> int | None:
    """Bytes sent by every interface of the process's network namespace except loopback."""
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    total = 0
    for line in lines:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = rest.split()
        if len(fields) >= 9:
            total += int(fields[8])
    return total


class EngineProbe:
    def __init__(self, drivers: dict, cgroup_root: Path = CGROUP):
        self.drivers = drivers
        self.root = cgroup_root
        self._paths: dict[str, tuple] = {}

    def sample(self, kind: str, engine_id: str | None) -> Sample | None:
        if not engine_id:
            return None
        try:
            return self._container(engine_id) if kind == "container" else self._vm(engine_id)
        except Exception:  # noqa: BLE001 - a probe must never break metering
            log.debug("probe of %s %s failed", kind, engine_id, exc_info=True)
            return None

    # -- containers ------------------------------------------------------------------------
    def _cgroup_dirs(self, cid: str):
        """(version, cpu dir, memory dir) of a container, cached; None when not found."""
        cached = self._paths.get(cid)
        if cached and cached[1].exists():
            return cached
        for rel in (f"docker/{cid}", f"system.slice/docker-{cid}.scope"):
            for cpu in ("cpuacct", "cpu,cpuacct"):
                d = self.root / cpu / rel
                if (d / "cpuacct.usage").exists():
                    found = ("v1", d, self.root / "memory" / rel)
                    self._paths[cid] = found
                    return found
            d = self.root / rel
            if (d / "cpu.stat").exists():
                found = ("v2", d, d)
                self._paths[cid] = found
                return found
        self._paths.pop(cid, None)
        return None

    def _container(self, cid: str) -> Sample | None:
        dirs = self._cgroup_dirs(cid)
        if dirs is None:
            return None
        version, cpu_dir, mem_dir = dirs
        at = time.time()
        if version == "v1":
            cpu = _read_int(cpu_dir / "cpuacct.usage")
            usage = _read_int(mem_dir / "memory.usage_in_bytes")
            inactive = _stat(mem_dir / "memory.stat").get("total_inactive_file", 0)
        else:
            usec = _stat(cpu_dir / "cpu.stat").get("usage_usec")
            cpu = usec * 1000 if usec is not None else None
            usage = _read_int(mem_dir / "memory.current")
            inactive = _stat(mem_dir / "memory.stat").get("inactive_file", 0)
        # `docker stats` counts memory the same way: usage minus reclaimable page cache.
        mem = max(0, usage - inactive) if usage is not None else None
        pid = _read_int(cpu_dir / "cgroup.procs")
        return Sample(at, cpu, mem, _tx_bytes(pid) if pid else None)

    # -- VMs -----------------------------------------------------------------------------------
    def _vm(self, name: str) -> Sample | None:
        driver = self.drivers.get("vm")
        if driver is None or not hasattr(driver, "conn"):
            return None
        import libvirt  # present whenever a VM driver is (the vm extra)

        try:
            conn = driver.conn
            dom = conn.lookupByName(name)
            if not dom.isActive():
                return None
            flags = (libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
                     | libvirt.VIR_DOMAIN_STATS_INTERFACE)
            stats = conn.domainListGetStats([dom], flags)[0][1]
        except libvirt.libvirtError:
            return None
        at = time.time()
        rss = stats.get("balloon.rss")
        tx = sum(stats.get(f"net.{i}.tx.bytes", 0) for i in range(stats.get("net.count", 0)))
        return Sample(at, stats.get("cpu.time"), rss * 1024 if rss is not None else None,
                      tx if stats.get("net.count") else None)
