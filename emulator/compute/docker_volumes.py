"""A container's volumes (block storage, issue 15): mounted by the host, seen by the container
at /volumes/<sdf> through mount propagation (hostmount.py). A mixin of DockerDriver, which
provides `mounts`, `_get`, `client` and `_errors` (its engine-error guard)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, ContextManager

from ..errors import InvalidParameter, NotFound
from .hostmount import TARGET as VOLUMES_TARGET, HostMounts, mountpoints

LABEL_INSTANCE = "pocketcloud.instance"


class DockerVolumes:
    mounts: HostMounts | None
    _errors: Callable[[str], ContextManager]

    def attach_volume(self, engine_id: str, instance_id: str, path, serial: str, device: str) -> str:
        c = self._get(engine_id)
        if self.mounts is None or not any(m.get("Destination") == VOLUMES_TARGET for m in c.attrs.get("Mounts", [])):
            raise InvalidParameter(f"{instance_id} was created without {VOLUMES_TARGET} (by an older pocketcloud, or "
                                   "on a host where it could not be shared): launch a new container to attach volumes",
                                   code="UnsupportedOperation")
        return self.mounts.mount(serial, path, instance_id, device.rsplit("/", 1)[-1])

    def attach_at_launch(self, instance_id: str, path, serial: str, device: str) -> str | None:
        """Mounted under the instance's directory before the container exists: the bind mount
        of /volumes is recursive, so the container sees it from its first process."""
        if self.mounts is None:
            raise InvalidParameter("this cloud cannot share volume mounts with containers (see the server's log)",
                                   code="UnsupportedOperation")
        return self.mounts.mount(serial, path, instance_id, device.rsplit("/", 1)[-1])

    def snapshot_volume(self, engine_id: str, instance_id: str, serial: str, device: str, source, target) -> bool:
        return self.mounts is not None and self.mounts.snapshot(serial, instance_id, device.rsplit("/", 1)[-1],
                                                                source, target)

    def volume_view(self, engine_id: str, instance_id: str, serial: str, device: str) -> dict:
        if self.mounts is None:
            return {}
        return {"engine": "docker", "container": engine_id[:12],
                **self.mounts.describe(serial, instance_id, device.rsplit("/", 1)[-1])}

    def volume_disks(self, engine_id: str) -> dict[str, str]:
        if self.mounts is None:
            return {}
        try:
            with self._errors(f"container {engine_id[:12]}"):
                labels = self.client.api.inspect_container(engine_id)["Config"]["Labels"] or {}
        except NotFound:
            return {}
        return self.mounts.mounted(labels.get(LABEL_INSTANCE, "")) if labels.get(LABEL_INSTANCE) else {}

    def restore_volumes(self, engine_id: str, instance_id: str, volumes: list[tuple[Path, str, str]],
                        running: bool, seen_running: bool) -> list[str]:
        """The host mounts are the kernel's and the exports are processes: a host reboot (or a
        killed qemu-storage-daemon) loses them while the records say in-use. Mount each again
        (a mount over a dead export is detached first);
        then the container must see them. One that runs sees a new mount through propagation
        only while its /volumes is still a slave of the shared ROOT (a lost export); after a
        reboot ROOT is a new shared mount, so it is restarted. One that should run but could
        not start (dockerd refuses an rslave bind of a mount that is not shared, which is what
        ROOT is after a reboot until pocketcloud shares it) is started."""
        if self.mounts is None:
            return []
        shared_now = self.mounts.ensure_shared()
        have = self.mounts.mounted(instance_id) if volumes else {}
        missing = [(path, serial, device) for path, serial, device in volumes
                   if serial not in have or not self.mounts.exporting(serial)]
        if not missing and not shared_now and (seen_running or not running):
            return []  # nothing lost (the common case: no engine call)
        for path, serial, device in missing:
            self.mounts.remount(serial, path, instance_id, device.rsplit("/", 1)[-1])
        done = [f"{instance_id}: {len(missing)} volume(s) mounted again"] if missing else []
        c = self._get(engine_id)
        state = c.attrs.get("State") or {}
        with self._errors(f"give {instance_id} its volumes"):
            if state.get("Running"):
                names = {f"{VOLUMES_TARGET}/{device.rsplit('/', 1)[-1]}" for _, _, device in volumes}
                try:
                    seen = set(mountpoints(state.get("Pid") or 0))
                except OSError:
                    seen = set()
                if not names <= seen:
                    c.restart(timeout=10)
                    done.append(f"{instance_id}: restarted to see them (its /volumes predates the shared mount)")
            elif running and "shared or slave mount" in (state.get("Error") or ""):
                c.start()
                done.append(f"{instance_id}: started (dockerd could not start it before its volumes were shared)")
        return done

    def detach_volume(self, engine_id: str, instance_id: str, serial: str, device: str) -> None:
        if self.mounts is None:
            return
        self.mounts.unmount(serial, instance_id, device.rsplit("/", 1)[-1])
        if not engine_id or self.inspect(engine_id) is None:
            self.mounts.remove_instance(instance_id)
