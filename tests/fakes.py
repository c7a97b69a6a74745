"""The one fake compute driver for unit tests: an engine held in a dict, with switches to
make it fail. It implements the whole Driver protocol (tests/unit/test_fakes.py checks)."""
from __future__ import annotations

from emulator.compute.driver import Driver, EngineInstance, ExecResult, LaunchSpec, PortForward, Usage
from emulator.errors import EngineError, InvalidState, NotFound


class FakeDriver(Driver):
    def __init__(self, kind: str = "container", name: str = "fake", hypervisor: dict | None = None):
        self.kind = kind
        self.name = name
        self.objects: dict[str, dict] = {}  # engine id -> {"id", "state", "ports", "forwards"[, "usage"]}
        self.fail_launch = False
        self.up = True
        self.calls: list[tuple] = []  # (method, engine id): what the services asked of the engine
        self._hypervisor = hypervisor
        self.images: dict[str, str] = {}  # snapshot id -> engine ref of a container root's snapshot
        self.fail_snapshot = False

    def available(self) -> tuple[bool, str]:
        return (True, "fake") if self.up else (False, "fake engine is down")

    def info(self) -> dict:
        return {"objects": len(self.objects)}

    def hypervisor(self) -> dict | None:
        return dict(self._hypervisor) if self._hypervisor else None

    def launch(self, spec: LaunchSpec) -> EngineInstance:
        self.calls.append(("launch", spec.instance_id))
        if self.fail_launch:
            raise EngineError("boom")
        engine_id = "e-" + spec.instance_id
        self.objects[engine_id] = {"id": spec.instance_id, "state": "pending", "ports": spec.ports, "forwards": (),
                                   "image_ref": spec.image_ref}
        try:
            spec.step("engine-create", engine_id)
            self.objects[engine_id]["state"] = "running"
            spec.step("start", engine_id)
        except BaseException:
            self.objects.pop(engine_id, None)  # a failed launch leaves nothing, as the real drivers
            raise
        return self._describe(engine_id)

    def inspect(self, engine_id: str) -> EngineInstance | None:
        self.calls.append(("inspect", engine_id))
        return self._describe(engine_id) if engine_id in self.objects else None

    def _get(self, engine_id: str) -> dict:
        if engine_id not in self.objects:
            raise NotFound(f"{engine_id} is not in the fake engine")
        return self.objects[engine_id]

    def _describe(self, engine_id: str) -> EngineInstance:
        o = self.objects[engine_id]
        return EngineInstance(engine_id, o["state"], tuple(o["ports"]) + tuple(o["forwards"]))

    def start(self, engine_id: str) -> EngineInstance:
        self.calls.append(("start", engine_id))
        self._get(engine_id)["state"] = "running"
        return self._describe(engine_id)

    def stop(self, engine_id: str, timeout: int) -> EngineInstance:
        self.calls.append(("stop", engine_id))
        self._get(engine_id)["state"] = "stopped"
        return self._describe(engine_id)

    def reboot(self, engine_id: str, timeout: int) -> EngineInstance:
        self.calls.append(("reboot", engine_id))
        if self._get(engine_id)["state"] != "running":
            raise InvalidState(f"{engine_id} is not running")
        return self._describe(engine_id)

    def terminate(self, engine_id: str) -> None:
        self.calls.append(("terminate", engine_id))
        self.objects.pop(engine_id, None)

    def console(self, engine_id: str, tail: int) -> str:
        return f"console of {self._get(engine_id)['id']}\n"

    def exec(self, engine_id: str, command: list[str], timeout: int, max_output: int = 1 << 20) -> ExecResult:
        self._get(engine_id)
        return ExecResult(0, " ".join(command) + "\n", "")

    def internals(self, engine_id: str) -> dict:
        return {"engine": {"name": self.name, "id": engine_id}}

    def remove_leftovers(self, instance_id: str) -> None:
        self.calls.append(("remove_leftovers", instance_id))
        for eid in [e for e, o in self.objects.items() if o["id"] == instance_id]:
            del self.objects[eid]

    def list_managed(self, cloud_label: str) -> dict[str, EngineInstance]:
        self.calls.append(("list_managed", cloud_label))
        return {o["id"]: self._describe(eid) for eid, o in self.objects.items()}

    def set_forwards(self, engine_id: str, ports: tuple[PortForward, ...]) -> None:
        self.calls.append(("set_forwards", engine_id))
        o = self._get(engine_id)
        published = {p.guest for p in o["ports"]}
        o["forwards"] = tuple(p for p in ports if p.guest not in published)

    def usage(self, engine_id: str) -> Usage | None:
        o = self.objects.get(engine_id)
        return o.get("usage") if o and o["state"] == "running" else None

    # -- volumes: disks by serial, named vdc, vdd ... in order, as the libvirt driver does --------
    def attach_volume(self, engine_id: str, instance_id: str, path, serial: str, device: str) -> str:
        self.calls.append(("attach_volume", engine_id))
        if getattr(self, "fail_attach", False):
            raise EngineError("attach failed")
        disks = self._get(engine_id).setdefault("disks", {})
        disks.setdefault(serial, f"/dev/vd{'cdefghijklmnopqrstuvwxyz'[len(disks)]}")
        return disks[serial]

    def detach_volume(self, engine_id: str, instance_id: str, serial: str, device: str) -> None:
        self.calls.append(("detach_volume", engine_id))
        if getattr(self, "fail_detach", False):
            raise EngineError("the guest did not release the disk", code="VolumeDetachTimeout")
        if engine_id in self.objects:
            self.objects[engine_id].get("disks", {}).pop(serial, None)

    def volume_disks(self, engine_id: str) -> dict[str, str]:
        return dict(self.objects.get(engine_id, {}).get("disks", {}))

    def restore_volumes(self, engine_id: str, instance_id: str, volumes, running: bool,
                        seen_running: bool) -> list[str]:
        """Gives back the disks the record names that the engine lost (as a host mount is lost);
        no call is recorded (a quiet pass makes no engine call: the docker driver's does not)."""
        disks = self.objects.get(engine_id, {}).setdefault("disks", {})
        lost = [serial for _, serial, _ in volumes if serial not in disks]
        for serial in lost:
            disks[serial] = f"/dev/vd{'cdefghijklmnopqrstuvwxyz'[len(disks)]}"
        return [f"{instance_id}: {len(lost)} volume(s) mounted again"] if lost else []

    # -- root snapshots: a container's an image named after the snapshot, a VM's a file ----------
    def snapshot_root(self, engine_id: str, instance_id: str, snapshot_id: str, target) -> tuple[str, int]:
        self.calls.append(("snapshot_root", engine_id))
        self._get(engine_id)
        if self.fail_snapshot:
            if self.kind == "container":  # the image exists, its name was never returned
                self.images[snapshot_id] = f"fake-snap:{snapshot_id}"
            raise EngineError("commit failed")
        if self.kind == "vm":
            target.write_bytes(b"QFI\xfb" + b"\0" * 20 + (512 << 20).to_bytes(8, "big") + b"root of " +
                               instance_id.encode())
            return "", target.stat().st_size
        self.images[snapshot_id] = f"fake-snap:{snapshot_id}"
        return f"fake-snap:{snapshot_id}", 4096

    def remove_root_snapshot(self, engine_ref: str) -> None:
        for sid in [s for s, ref in self.images.items() if ref == engine_ref]:
            del self.images[sid]

    def root_snapshots(self) -> dict[str, str]:
        return dict(self.images)

    def ami_images(self) -> dict[str, str]:  # no AMI is made the other kind over fakes
        return {}

    def export_leftovers(self, busy: set[str]) -> list[str]:
        return []
