"""The Driver protocol every compute engine implements, and what crosses it.

A driver owns one engine (dockerd, libvirtd). It speaks only in these dataclasses and
emulator.errors exceptions: engine exceptions never escape it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .types import InstanceType


@dataclass(frozen=True)
class PortForward:
    guest: int
    host: int | None = None  # None: the engine picks a free port
    protocol: str = "tcp"

    def to_dict(self) -> dict:
        return {"guest": self.guest, "host": self.host, "host_ip": "127.0.0.1", "protocol": self.protocol}


@dataclass(frozen=True)
class LaunchSpec:
    instance_id: str
    owner: str
    name: str
    image_ref: str
    type: InstanceType
    ports: tuple[PortForward, ...] = ()
    user_data: str = ""
    hostname: str = ""
    ssh_keys: tuple[str, ...] = ()
    labels: dict = field(default_factory=dict)
    # Forward SSH without being asked when the image has it (a VM driver's convenience);
    # the services turn it off and decide the forwards themselves (security groups).
    auto_ssh: bool = True


@dataclass(frozen=True)
class EngineInstance:
    """What the engine says about one instance right now."""

    engine_id: str
    state: str  # an EC2 state name
    ports: tuple[PortForward, ...] = ()
    private_ip: str | None = None
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


@runtime_checkable
class Driver(Protocol):
    kind: str

    def available(self) -> tuple[bool, str]:
        """(usable, a one-line description or the reason it is not)."""

    def info(self) -> dict: ...

    def launch(self, spec: LaunchSpec) -> EngineInstance:
        """Create and start; on any failure remove whatever was created, then raise."""

    def inspect(self, engine_id: str) -> EngineInstance | None:
        """None when the engine no longer has it."""

    def start(self, engine_id: str) -> EngineInstance: ...

    def stop(self, engine_id: str, timeout: int) -> EngineInstance: ...

    def reboot(self, engine_id: str, timeout: int) -> EngineInstance: ...

    def terminate(self, engine_id: str) -> None:
        """Remove everything of the instance; a missing instance is not an error."""

    def console(self, engine_id: str, tail: int) -> str: ...

    def exec(self, engine_id: str, command: list[str], timeout: int) -> ExecResult: ...

    def internals(self, engine_id: str) -> dict:
        """What really runs behind the instance, read live from the engine and the host."""

    def list_managed(self, cloud_label: str) -> dict[str, str]:
        """instance id -> engine id for every engine object this cloud created."""
