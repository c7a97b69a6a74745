"""The Driver protocol every compute engine implements, and what crosses it.

A driver owns one engine (dockerd, libvirtd). It speaks only in these dataclasses and
emulator.errors exceptions: engine exceptions never escape it.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

from ..errors import InvalidParameter
from .types import InstanceType


@dataclass(frozen=True)
class PortForward:
    guest: int
    host: int | None = None  # None: the engine picks a free port
    protocol: str = "tcp"

    def to_dict(self) -> dict:
        return {"guest": self.guest, "host": self.host, "host_ip": "127.0.0.1", "protocol": self.protocol}


@dataclass(frozen=True)
class NetAttach:
    """Where an instance's interface goes with VPC networking on: its subnet's bridge (a VM's tap)
    or the Docker network bound to it (a container), with the address and MAC pocketcloud chose."""

    subnet_id: str
    bridge: str
    docker_network: str
    ip: str
    mac: str
    gateway: str
    prefixlen: int
    tap: str = ""  # a VM's tap name, fixed in advance so the rules pin it before the guest boots


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
    # Forward SSH without being asked when the image has it (a VM driver's convenience);
    # the services turn it off and decide the forwards themselves (security groups).
    auto_ssh: bool = True
    root_gib: int | None = None  # a root device larger than the image's (None: the image's size)
    network: NetAttach | None = None  # None: the engine's own network (Docker's bridge, libvirt's NAT)
    # Told each step a launch reaches, with the engine id once there is one: the services
    # journal it (crash recovery) and show a VM's boot phases. It may raise to abort the
    # launch (the instance was terminated meanwhile); the driver then rolls back as on any failure.
    on_step: Callable[[str, str], None] | None = field(default=None, compare=False, repr=False)

    def step(self, name: str, engine_id: str = "") -> None:
        if self.on_step is not None:
            self.on_step(name, engine_id)


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
    truncated: bool = False  # a stream passed the output cap: only its first bytes are kept
    timed_out: bool = False  # the command was killed at its timeout (exit code 124)


@dataclass(frozen=True)
class Usage:
    """What an instance used, as counters since it last started (a meter bills the deltas)."""

    cpu_ns: int | None
    mem_bytes: int | None  # resident now
    tx_bytes: int | None  # sent by the instance's network interfaces


@runtime_checkable
class Driver(Protocol):
    """An engine's side of every instance operation the services use.

    Drivers subclass it: the abstract methods are what every engine must do; the others
    have defaults for an engine that has nothing to do there (no hypervisor, forwards that
    need no restoring)."""

    kind: str  # the instance kind this engine runs: "container" or "vm"
    name: str  # the engine's name as users see it: "docker", "libvirt"

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """(usable, a one-line description or the reason it is not)."""

    @abstractmethod
    def info(self) -> dict: ...

    def hypervisor(self) -> dict | None:
        """How this engine virtualizes ({'mode', 'reason', ...}); None when it does not."""
        return None

    @abstractmethod
    def launch(self, spec: LaunchSpec) -> EngineInstance:
        """Create and start; on any failure remove whatever was created, then raise.
        Calls spec.step(NAME, engine_id) after each step (see the engines for the names)."""

    def preflight(self, spec: LaunchSpec) -> None:
        """Refuse at once what this engine cannot launch (image, capacity, input), before the
        instance is recorded: a launch that goes on in the background must not fail for bad
        input. `launch` checks again."""

    @abstractmethod
    def inspect(self, engine_id: str) -> EngineInstance | None:
        """None when the engine no longer has it."""

    @abstractmethod
    def start(self, engine_id: str) -> EngineInstance: ...

    @abstractmethod
    def stop(self, engine_id: str, timeout: int) -> EngineInstance: ...

    @abstractmethod
    def reboot(self, engine_id: str, timeout: int) -> EngineInstance: ...

    @abstractmethod
    def terminate(self, engine_id: str) -> None:
        """Remove everything of the instance; a missing instance is not an error."""

    @abstractmethod
    def console(self, engine_id: str, tail: int) -> str: ...

    @abstractmethod
    def exec(self, engine_id: str, command: list[str], timeout: int, max_output: int = 1024 * 1024) -> ExecResult:
        """Run a command: stdout and stderr kept up to `max_output` bytes each (the rest read
        and dropped), the command and what it started killed after `timeout` seconds."""

    @abstractmethod
    def internals(self, engine_id: str) -> dict:
        """What really runs behind the instance, read live from the engine and the host."""

    @abstractmethod
    def list_managed(self, cloud_label: str) -> dict[str, EngineInstance]:
        """instance id -> what the engine says about it, for every engine object this cloud
        created, in one pass over the engine (the reconciler's view)."""

    def remove_leftovers(self, instance_id: str) -> None:
        """Remove whatever a launch of `instance_id` that died half-way may have left (its
        engine object, disk overlay, seed, address reservation, forwards); nothing there is
        not an error. The default suits an engine whose launch leaves nothing but the object."""

    def set_forwards(self, engine_id: str, ports: tuple[PortForward, ...]) -> None:
        """Make the instance's 127.0.0.1 forwards exactly `ports` (host ports already
        chosen), whether it runs or not."""

    def restore_forwards(self) -> None:
        """Re-open, after a server restart, the forwards this engine keeps a record of."""

    # -- volumes (block storage): an engine that cannot attach refuses -----------------------------
    def attach_volume(self, engine_id: str, instance_id: str, path: Path, serial: str, device: str) -> str:
        """Give the instance the volume file at `path`, named `serial` (the volume id without
        its dash) where the engine allows, asked for as EC2 `device` (/dev/sdf); return where
        the instance finds it (a VM's /dev/vdc, a container's /volumes/sdf)."""
        raise InvalidParameter(f"{self.name} instances cannot attach volumes", code="UnsupportedOperation")

    def attach_at_launch(self, instance_id: str, path: Path, serial: str, device: str) -> str | None:
        """Before the instance is created: give it the volume from the start where this engine
        can (returns where the instance finds it); None: attach_volume once it runs."""
        return None

    def detach_volume(self, engine_id: str, instance_id: str, serial: str, device: str) -> None:
        """Take the volume back; an instance that no longer has it is not an error."""
        raise InvalidParameter(f"{self.name} instances cannot detach volumes", code="UnsupportedOperation")

    def volume_view(self, engine_id: str, instance_id: str, serial: str, device: str) -> dict:
        """How the engine gives the instance the attached volume, read from the engine now (the
        domain's disk, the host's mount): for `volumes internals`. Empty when it cannot tell."""
        return {}

    def snapshot_volume(self, engine_id: str, instance_id: str, serial: str, device: str, source: Path,
                        target: Path) -> bool:
        """Copy the attached volume (file `source`) to the qcow2 file `target`, crash-consistent
        while the instance goes on writing; False when the engine is not writing to it (the
        caller copies the file itself)."""
        return False

    def snapshot_root(self, engine_id: str, instance_id: str, snapshot_id: str, target: Path) -> tuple[str, int]:
        """Copy the instance's root device as it is now: a VM's flattened disk into the qcow2
        file `target`, a container's filesystem as an engine image. Returns (the engine's name
        for the copy, '' for a file; the bytes it stores)."""
        raise InvalidParameter(f"{self.name} instances cannot snapshot their root device", code="UnsupportedOperation")

    def remove_root_snapshot(self, engine_ref: str) -> None:
        """Remove what snapshot_root made under `engine_ref` (gone already is not an error)."""

    def root_snapshots(self) -> dict[str, str]:
        """snapshot id -> engine ref of this cloud's root snapshots the engine holds (leak check,
        and what a restarted server rolls back)."""
        return {}

    def grow_volume(self, engine_id: str, serial: str, size_bytes: int) -> bool:
        """Grow an attached volume through the engine, so the instance is told; False when
        this engine cannot (the caller refuses: detach first)."""
        return False

    def volume_disks(self, engine_id: str) -> dict[str, str]:
        """serial -> guest device of the volumes the engine says the instance has."""
        return {}

    def restore_volumes(self, engine_id: str, instance_id: str, volumes: list[tuple[Path, str, str]],
                        running: bool, seen_running: bool) -> list[str]:
        """After a host reboot or a lost export: give the instance back the (file, serial,
        device) volumes its record says it has, where the engine does not keep them itself
        (a VM's disks are in its domain definition); `running`: its record says it runs,
        `seen_running`: the engine's listing says so. Returns what was done."""
        return []

    def usage(self, engine_id: str) -> Usage | None:
        """The instance's usage counters from the engine; None while it does not run, or
        when this engine cannot tell (the caller then reads what it can from the host)."""
        return None
