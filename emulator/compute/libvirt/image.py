"""A VM image: a directory with a vm.json naming its kernel, initrd and base disk (see
images/README.md). Every path is checked to stay inside the image directory."""
from __future__ import annotations

import json
from pathlib import Path

from ...errors import InvalidParameter, NotFound
from ..driver import LaunchSpec
from ..sshkeys import validate_public_key
from .domain import IID, hostname_for

DEFAULT_BOOT_TIMEOUT = 180.0


def load_vm_image(ref: str) -> dict:
    """vm.json's fields, with `dir` and absolute `kernel`, `initrd` (or None) and `disk`."""
    folder = Path(ref)
    try:
        vm = json.loads((folder / "vm.json").read_text())
    except (OSError, ValueError) as e:
        raise NotFound(f"VM image {ref!r} is not usable: {e}", code="InvalidAMIID.NotFound") from None
    if not isinstance(vm, dict):
        raise NotFound(f"VM image {ref!r} is not usable: vm.json is not an object", code="InvalidAMIID.NotFound")
    out = {"dir": folder, **vm}
    for key in ("kernel", "initrd", "disk"):
        rel = vm.get(key)
        if rel is None:
            if key == "initrd":
                out[key] = None
                continue
            raise InvalidParameter(f"VM image {ref}: vm.json has no {key!r}")
        p = (folder / rel).resolve()
        if folder.resolve() not in p.parents or not p.is_file():
            raise InvalidParameter(f"VM image {ref}: {key} {rel!r} is not a file inside the image")
        out[key] = p
    if not isinstance(vm.get("cmdline", ""), str) or len(vm.get("cmdline", "")) > 1024:
        raise InvalidParameter(f"VM image {ref}: cmdline must be a string")
    return out


def boot_timeout(vm: dict, override: float | None = None) -> float:
    """Seconds a guest of this image gets to become ready (the driver's override first)."""
    return float(override or vm.get("boot_timeout") or DEFAULT_BOOT_TIMEOUT)


def check_launch(spec: LaunchSpec, vm: dict, *, host_mib: int, host_cpus: int) -> tuple[str, tuple[str, ...]]:
    """Refuse what cannot run here before anything is created; (hostname, clean SSH keys)."""
    if not IID.match(spec.instance_id):
        raise InvalidParameter(f"invalid instance id {spec.instance_id!r}", code="InvalidInstanceID.Malformed")
    hostname = hostname_for(spec.hostname, spec.instance_id)
    keys = tuple(validate_public_key(k) for k in spec.ssh_keys)
    t = spec.type
    if t.memory_mib > host_mib:
        raise InvalidParameter(f"instance type {t.name} needs {t.memory_mib} MiB but this host has {host_mib} MiB",
                               code="InsufficientInstanceCapacity")
    if t.memory_mib < int(vm.get("min_memory_mib", 64)):
        raise InvalidParameter(f"image {vm['dir'].name} needs at least {vm.get('min_memory_mib')} MiB of memory")
    if t.vcpus > host_cpus:
        raise InvalidParameter(f"instance type {t.name} needs {t.vcpus} vCPUs but this host has {host_cpus}",
                               code="InsufficientInstanceCapacity")
    if "\x00" in spec.user_data:
        raise InvalidParameter("user_data must not contain NUL bytes")
    for p in spec.ports:
        if p.protocol != "tcp" or not 0 < p.guest < 65536 or (p.host is not None and not 1024 <= p.host < 65536):
            raise InvalidParameter(f"invalid port forward {p}")
    return hostname, keys
