"""The one place compute drivers are built from a Config."""
from __future__ import annotations

from pathlib import Path

from ..config import Config
from .docker_driver import DockerDriver
from .driver import Driver
from .forwarder import Forwarder
from .hostmount import HostMounts
from .libvirt import LibvirtDriver

DRIVER_CLASSES = (DockerDriver, LibvirtDriver)
ENGINE_NAMES = {cls.kind: cls.name for cls in DRIVER_CLASSES}  # instance kind -> engine name


def build_drivers(config: Config, *, probe_image: str | Path | None = None,
                  forwarder: Forwarder | None = None) -> dict[str, Driver]:
    """kind -> driver for every engine a cloud uses. Nothing is contacted here: each driver
    connects on first use. `probe_image` (the tiny VM image) lets auto mode prove KVM."""
    # One forwarder for both kinds: every 127.0.0.1 forward lives in this process.
    forwarder = forwarder or Forwarder()
    return {
        "container": DockerDriver(config.docker_url, config.instance_label, forwarder=forwarder,
                                  log_max_size=config.container_log_max_size,
                                  log_max_files=config.container_log_max_files,
                                  disk_size=config.container_disk_size,
                                  volume_mounts=HostMounts(config.home / "volume-mounts", config.home / "volume-run")),
        "vm": LibvirtDriver(config.libvirt_uri, config.instance_label, config.home / "vms",
                            hypervisor=config.hypervisor, network_name=config.vm_network,
                            network_cidr=config.vm_cidr, forwarder=forwarder, probe_image=probe_image),
    }
