"""CPU utilisation of instances, read from the engines: what `ASGAverageCPUUtilization` means here.

A container's CPU time is its cgroup's (Docker's stats, one shot), a VM's is its domain's
(libvirt's `virDomainGetInfo`, all vCPUs and the emulator threads). Utilisation is the CPU
time used between two samples over the wall time between them and the instance type's
vCPUs, in percent, as CloudWatch's EC2 `CPUUtilization` is.
"""
from __future__ import annotations

import logging
import threading
import time

from ..compute.types import INSTANCE_TYPES

log = logging.getLogger("pocketcloud.autoscaling")
FORGET_AFTER = 600.0


class CpuMeter:
    def __init__(self, docker_url: str, libvirt_uri: str):
        self.docker_url, self.libvirt_uri = docker_url, libvirt_uri
        self._docker = None
        self._virt = None
        self._guard = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}

    def utilization(self, inst) -> float | None:
        """Percent of the instance's vCPUs used since the previous call for it (None on the first
        call, or when the engine does not answer)."""
        cpu_ns = self.cpu_time(inst)
        if cpu_ns is None:
            return None
        now = time.monotonic()
        with self._guard:
            prev = self._last.get(inst.id)
            self._last[inst.id] = (now, cpu_ns)
            for key in [k for k, (t, _) in self._last.items() if now - t > FORGET_AFTER]:
                del self._last[key]
        if prev is None or now <= prev[0] or cpu_ns < prev[1]:
            return None
        itype = INSTANCE_TYPES.get(inst.type)
        vcpus = itype.vcpus if itype else 1
        return round(max(0.0, min(100.0, 100.0 * (cpu_ns - prev[1]) / 1e9 / (now - prev[0]) / vcpus)), 1)

    def cpu_time(self, inst) -> int | None:
        """Cumulative CPU nanoseconds of a running instance, or None."""
        if inst.state != "running" or not inst.engine_id:
            return None
        try:
            if inst.kind == "container":
                stats = self._docker_client().api.stats(inst.engine_id, stream=False, one_shot=True)
                return int(stats["cpu_stats"]["cpu_usage"]["total_usage"])
            return int(self._libvirt().lookupByName(inst.engine_id).info()[4])
        except Exception as e:  # noqa: BLE001 - docker/libvirt errors: no sample this time, never a crash
            log.debug("no CPU sample for %s: %s", inst.id, e)
            if inst.kind == "vm":
                self._virt = None  # a dropped connection is opened again next time
            return None

    def _docker_client(self):
        if self._docker is None:
            import docker

            self._docker = docker.DockerClient(base_url=self.docker_url, timeout=10)
        return self._docker

    def _libvirt(self):
        if self._virt is None:
            import libvirt

            self._virt = libvirt.open(self.libvirt_uri)
        return self._virt
