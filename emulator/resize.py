"""Changing a stopped instance's type on its engine: the cgroup limits of a container, the
vCPUs and memory of a VM's persistent definition. EC2's ModifyInstanceAttribute(InstanceType)
needs it, and types are enforced, so the record changes only once the engine has.

This is a driver operation; it lives beside the drivers until the Driver protocol grows a
`resize(engine_id, type)` (the compute package is being reorganised in parallel). Like a
driver, it lets no engine exception out: they become emulator errors.
"""
from __future__ import annotations

import re

from .compute.types import InstanceType
from .errors import BackendUnavailable, EngineError, InvalidParameter, InvalidState, NotFound

ENGINE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def resize(driver, engine_id: str, itype: InstanceType) -> None:
    if not isinstance(engine_id, str) or not ENGINE_ID.fullmatch(engine_id):
        raise InvalidParameter(f"invalid engine id {str(engine_id)[:40]!r}")
    if driver.kind == "container":
        _resize_container(driver, engine_id, itype)
    elif driver.kind == "vm":
        _resize_vm(driver, engine_id, itype)
    else:
        raise InvalidParameter(f"instances of kind {driver.kind!r} cannot change type")


def _resize_container(driver, engine_id: str, itype: InstanceType) -> None:
    import docker
    import requests

    memory = itype.memory_mib * 1024 * 1024
    body = {"Memory": memory, "MemorySwap": memory, "NanoCpus": itype.vcpus * 1_000_000_000}
    try:
        api = driver.client.api
        # The SDK's update_container() has no NanoCpus, which launch sets: speak the Engine API
        # (POST /containers/ID/update) through the SDK's own session instead.
        api._result(api._post_json(api._url("/containers/{0}/update", engine_id), data=body), True)
    except docker.errors.NotFound:
        raise NotFound(f"container {engine_id} no longer exists", code="InvalidInstanceID.NotFound") from None
    except docker.errors.APIError as e:
        raise EngineError(f"resizing {engine_id}: dockerd said: {e.explanation or e}") from e
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as e:
        raise BackendUnavailable(f"resizing {engine_id}: dockerd is not reachable ({e})") from e


def _resize_vm(driver, engine_id: str, itype: InstanceType) -> None:
    try:
        import libvirt
    except ImportError:  # pragma: no cover - the VM engine cannot exist without it
        raise BackendUnavailable("libvirt-python is not installed") from None
    kib = itype.memory_mib * 1024
    config = libvirt.VIR_DOMAIN_AFFECT_CONFIG
    try:
        conn = driver.conn
        host_mib, host_cpus = conn.getInfo()[1:3]
        if itype.memory_mib > host_mib or itype.vcpus > host_cpus:
            raise InvalidParameter(f"instance type {itype.name} needs {itype.vcpus} vCPUs and {itype.memory_mib} MiB; "
                                   f"this host has {host_cpus} and {host_mib} MiB", code="InsufficientInstanceCapacity")
        dom = conn.lookupByName(engine_id)
        if dom.isActive():
            raise InvalidState(f"{engine_id} is running; stop it before changing its type",
                               code="IncorrectInstanceState")
        # Maximum before current when growing, current before maximum when shrinking:
        # libvirt refuses a current value above the maximum at every step.
        if kib >= dom.maxMemory():
            dom.setMemoryFlags(kib, config | libvirt.VIR_DOMAIN_MEM_MAXIMUM)
            dom.setMemoryFlags(kib, config)
        else:
            dom.setMemoryFlags(kib, config)
            dom.setMemoryFlags(kib, config | libvirt.VIR_DOMAIN_MEM_MAXIMUM)
        current_max = dom.vcpusFlags(config | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
        if itype.vcpus >= current_max:
            dom.setVcpusFlags(itype.vcpus, config | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
            dom.setVcpusFlags(itype.vcpus, config)
        else:
            dom.setVcpusFlags(itype.vcpus, config)
            dom.setVcpusFlags(itype.vcpus, config | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            raise NotFound(f"domain {engine_id} no longer exists", code="InvalidInstanceID.NotFound") from None
        raise EngineError(f"resizing {engine_id}: libvirt said: {e.get_error_message()}") from e
