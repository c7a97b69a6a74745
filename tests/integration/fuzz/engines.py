"""What the engines hold for one cloud, compared before and after each rejected request:
a refused request must change nothing on Docker, libvirt or the S3 engine."""
from __future__ import annotations

import os
from pathlib import Path

import libvirt

from emulator.config import Config


class Engines:
    def __init__(self, server, docker_client):
        self.label = Config(home=Path(server.home)).instance_label
        self.docker = docker_client
        self.s3_data = Path(server.home) / "storage" / "data"  # the embedded engine's objects
        self.virt = libvirt.open("qemu:///system")

    def snapshot(self) -> dict:
        containers = sorted((c.id, c.status) for c in self.docker.containers.list(
            all=True, filters={"label": f"pocketcloud.cloud={self.label}"}))
        domains = []
        for d in self.virt.listAllDomains():
            try:
                if self.label in (d.XMLDesc() or ""):
                    domains.append(d.name())
            except libvirt.libvirtError:
                pass  # another test cloud's domain went away meanwhile
        domains.sort()
        files = []
        for root, _, names in os.walk(self.s3_data):
            for name in names:
                p = Path(root) / name
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                files.append((str(p.relative_to(self.s3_data)), st.st_size, st.st_mtime_ns))
        return {"containers": containers, "domains": domains, "s3": sorted(files)}

    def close(self) -> None:
        self.virt.close()
