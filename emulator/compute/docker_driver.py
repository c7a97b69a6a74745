"""Containers through dockerd.

docker.errors.* never leave this module: `_engine_errors` turns each into an
emulator.errors exception, the way docker-py itself funnels HTTP errors into its own.
"""
from __future__ import annotations

import logging
import platform
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Iterator

import docker
import docker.errors
import requests.exceptions

from ..errors import AlreadyExists, BackendUnavailable, CloudError, EngineError, InvalidState, NotFound
from . import cloudinit, hostinfo
from .execio import MAX_EXEC_OUTPUT, TIMED_OUT_EXIT, Capped, kill_tree
from .driver import Driver, EngineInstance, ExecResult, LaunchSpec, PortForward
from .forwarder import Forwarder
from .docker_amis import LABEL_CLOUD, LABEL_SNAPSHOT, DockerAmis
from .docker_volumes import LABEL_INSTANCE, DockerVolumes
from .hostmount import TARGET as VOLUMES_TARGET, HostMounts

LABEL_OWNER = "pocketcloud.owner"
# Root snapshots of containers are images of this repository, tagged with the snapshot id.
SNAPSHOT_REPOSITORY = "pocketcloud-snapshots"

_STATES = {
    "created": "pending",
    "restarting": "pending",
    "running": "running",
    "paused": "running",
    "removing": "shutting-down",
    "exited": "stopped",
    "dead": "stopped",
}
log = logging.getLogger("pocketcloud")


@contextmanager
def _engine_errors(what: str) -> Iterator[None]:
    try:
        yield
    except docker.errors.ImageNotFound as e:
        raise NotFound(f"{what}: image not found in dockerd", code="InvalidAMIID.NotFound") from e
    except docker.errors.NotFound as e:
        raise NotFound(f"{what}: not found in dockerd") from e
    except docker.errors.APIError as e:
        text = str(e.explanation or e)
        if "port is already allocated" in text or "address already in use" in text:
            raise AlreadyExists(f"{what}: a requested host port is already in use", code="PortInUse") from e
        if "--storage-opt is supported only" in text:
            raise EngineError(f"{what}: this dockerd cannot cap a container's disk: {text}",
                              hint="unset POCKETCLOUD_CONTAINER_DISK, or put /var/lib/docker on xfs with pquota") from e
        if "is not running" in text or "is already" in text:
            raise InvalidState(f"{what}: {text}") from e
        raise EngineError(f"{what}: dockerd said: {text}") from e
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as e:
        raise BackendUnavailable(
            f"{what}: dockerd is not reachable ({e})", hint="start it with `make up` or `sudo dockerd`"
        ) from e


class DockerDriver(DockerAmis, DockerVolumes, Driver):
    kind = "container"
    name = "docker"
    _errors = staticmethod(_engine_errors)

    def __init__(self, base_url: str, cloud_label: str, forwarder: Forwarder | None = None,
                 log_max_size: str = "10m", log_max_files: int = 3, disk_size: str = "",
                 volume_mounts: HostMounts | None = None):
        self.base_url = base_url
        self.mounts = volume_mounts  # volumes reach containers through host mounts (hostmount.py)
        # A container's console is its json-file log: rotated, so no instance fills the disk.
        self.log_config = docker.types.LogConfig(type="json-file", config={
            "max-size": log_max_size, "max-file": str(log_max_files)})
        self.storage_opt = {"size": disk_size} if disk_size else None
        self.cloud_label = cloud_label
        # Ports asked for at create are published by dockerd; ports opened later (security
        # group rules) cannot be added to a container, so they go through this forwarder.
        self.forwarder = forwarder or Forwarder()
        self._client: docker.DockerClient | None = None
        # As many as the services let run at once (Config.exec_total), so none waits here.
        self._exec_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="docker-exec")

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            with _engine_errors("connect"):
                self._client = docker.DockerClient(base_url=self.base_url, timeout=120, max_pool_size=32)
        return self._client

    def available(self) -> tuple[bool, str]:
        try:
            with _engine_errors("ping"):
                v = self.client.version()
            return True, f"dockerd {v.get('Version')} (API {v.get('ApiVersion')})"
        except BackendUnavailable as e:
            self._client = None
            return False, str(e)

    def info(self) -> dict:
        with _engine_errors("info"):
            i = self.client.info()
            v = self.client.version()
        return {
            "version": v.get("Version"),
            "api_version": v.get("ApiVersion"),
            "storage_driver": i.get("Driver"),
            "cgroup_driver": i.get("CgroupDriver"),
            "cgroup_version": i.get("CgroupVersion"),
            "kernel": i.get("KernelVersion"),
            "runtime": i.get("DefaultRuntime"),
            # with it, containers keep running while dockerd restarts (scripts/engines.sh sets it)
            "live_restore": bool(i.get("LiveRestoreEnabled")),
        }

    # -- lifecycle ---------------------------------------------------------------
    def launch(self, spec: LaunchSpec) -> EngineInstance:
        labels = {LABEL_CLOUD: self.cloud_label, LABEL_INSTANCE: spec.instance_id, LABEL_OWNER: spec.owner}
        hostname = spec.hostname or spec.instance_id
        # The image's init reads the same NoCloud seed a VM gets, from the same place.
        seed = cloudinit.seed_tar(cloudinit.seed_files(spec.instance_id, hostname, spec.user_data, spec.ssh_keys))
        ports = {f"{p.guest}/{p.protocol}": ("127.0.0.1", p.host) for p in spec.ports}
        container = None
        mounts = []
        if self.mounts is not None:
            try:
                mounts = [docker.types.Mount(VOLUMES_TARGET, str(self.mounts.instance_dir(spec.instance_id)),
                                             type="bind", propagation="rslave")]
            except CloudError as e:  # the container runs; volumes will be refused for it, saying why
                log.warning("%s gets no /volumes: %s", spec.instance_id, e)
        try:
            with _engine_errors(f"create {spec.instance_id}"):
                net = spec.network
                on_subnet = {} if net is None else {  # the subnet's Docker network, at pocketcloud's address
                    "network": net.docker_network, "mac_address": net.mac,
                    "networking_config": {net.docker_network: self.client.api.create_endpoint_config(
                        ipv4_address=net.ip)}}
                container = self.client.containers.create(
                    spec.image_ref,
                    name=f"pc-{spec.instance_id}",
                    hostname=hostname,
                    labels=labels,
                    mem_limit=f"{spec.type.memory_mib}m",
                    memswap_limit=f"{spec.type.memory_mib}m",
                    nano_cpus=spec.type.vcpus * 1_000_000_000,
                    pids_limit=1024,
                    ports=ports,
                    detach=True,
                    stop_signal="SIGTERM",
                    # An instance outlives its control plane: where dockerd has no live-restore,
                    # a dockerd restart (or a host reboot) starts the instances that ran again;
                    # one stopped through pocketcloud (or `docker stop`/`kill`) stays stopped.
                    restart_policy={"Name": "unless-stopped"},
                    log_config=self.log_config,
                    storage_opt={"size": f"{spec.root_gib}g"} if spec.root_gib else self.storage_opt,
                    mounts=mounts,
                    **on_subnet,
                )
            spec.step("engine-create", container.id)
            with _engine_errors(f"start {spec.instance_id}"):
                container.put_archive("/", seed)
                container.start()
            spec.step("start", container.id)
            with _engine_errors(f"inspect {spec.instance_id}"):
                container.reload()
            return self._describe(container)
        except BaseException:
            if container is not None:
                self._remove_quietly(container.id)
            raise

    def remove_leftovers(self, instance_id: str) -> None:
        """A launch leaves only its container, named after the instance."""
        self._remove_quietly(f"pc-{instance_id}")

    def _remove_quietly(self, engine_id: str) -> None:
        try:
            self.client.api.remove_container(engine_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException:
            pass  # The reconciler retries removal of anything labelled but unknown.

    def inspect(self, engine_id: str) -> EngineInstance | None:
        try:
            with _engine_errors(f"inspect {engine_id[:12]}"):
                return self._describe(self.client.containers.get(engine_id))
        except NotFound:
            return None

    def _get(self, engine_id: str):
        with _engine_errors(f"container {engine_id[:12]}"):
            return self.client.containers.get(engine_id)

    def start(self, engine_id: str) -> EngineInstance:
        c = self._get(engine_id)
        with _engine_errors("start"):
            c.start()
            c.reload()
        return self._describe(c)

    def stop(self, engine_id: str, timeout: int) -> EngineInstance:
        c = self._get(engine_id)
        with _engine_errors("stop"):
            c.stop(timeout=timeout)
            c.reload()
        return self._describe(c)

    def reboot(self, engine_id: str, timeout: int) -> EngineInstance:
        c = self._get(engine_id)
        with _engine_errors("reboot"):
            c.restart(timeout=timeout)
            c.reload()
        return self._describe(c)

    def terminate(self, engine_id: str) -> None:
        self.forwarder.close_prefix(f"{engine_id}:")
        with _engine_errors("terminate"):
            try:
                iid = (self.client.api.inspect_container(engine_id)["Config"]["Labels"] or {}).get(LABEL_INSTANCE)
                self.client.api.remove_container(engine_id, force=True, v=True)
            except docker.errors.NotFound:
                iid = None
        if iid and self.mounts is not None:
            self.mounts.remove_instance(iid)  # only when no volume is mounted there any more

    # -- root snapshots: the container's filesystem (image + writable layer) as an image ----------
    def snapshot_root(self, engine_id: str, instance_id: str, snapshot_id: str, target) -> tuple[str, int]:
        """`docker commit`, the container paused meanwhile (a crash-consistent point in time);
        labelled with the cloud and the snapshot, so a dead server's leftovers are found. What
        it stores is the new layer: the image below is shared with the instance's image."""
        c = self._get(engine_id)
        labels = {LABEL_CLOUD: self.cloud_label, LABEL_SNAPSHOT: snapshot_id}
        with _engine_errors(f"commit {instance_id}"):
            img = c.commit(repository=SNAPSHOT_REPOSITORY, tag=snapshot_id, pause=True,
                           message=f"root of {instance_id}", conf={"Labels": labels})
            base = self.client.images.get(c.attrs["Image"]).attrs.get("Size") or 0
        return f"{SNAPSHOT_REPOSITORY}:{snapshot_id}", max(0, (img.attrs.get("Size") or 0) - base)

    def remove_root_snapshot(self, engine_ref: str) -> None:
        if engine_ref:
            self.remove_image(engine_ref)

    def root_snapshots(self) -> dict[str, str]:
        with _engine_errors("list snapshot images"):
            images = self.client.images.list(filters={"label": [f"{LABEL_CLOUD}={self.cloud_label}",
                                                                 LABEL_SNAPSHOT]})
        out = {}
        for img in images:
            sid = (img.labels or {}).get(LABEL_SNAPSHOT, "")
            tag = f"{SNAPSHOT_REPOSITORY}:{sid}"
            out[sid] = tag if tag in (img.tags or []) else img.id
        return out

    def console(self, engine_id: str, tail: int) -> str:
        c = self._get(engine_id)
        with _engine_errors("logs"):
            out = c.logs(stdout=True, stderr=True, tail=tail, timestamps=False)
        return out.decode(errors="replace")

    def exec(self, engine_id: str, command: list[str], timeout: int, max_output: int = MAX_EXEC_OUTPUT) -> ExecResult:
        c = self._get(engine_id)
        if c.status != "running":
            raise InvalidState("the instance is not running; start it before exec", code="IncorrectInstanceState")
        api = self.client.api
        with _engine_errors("exec"):
            exec_id = api.exec_create(c.id, command, stdout=True, stderr=True, stdin=False, tty=False)["Id"]
            stream = api.exec_start(exec_id, stream=True, demux=True)
        out, err = Capped(max_output), Capped(max_output)

        def pump() -> None:
            # docker-py polls the socket without a timeout: this ends when the command's
            # output closes, which the kill below makes sure of.
            with _engine_errors("exec"):
                for o, e in stream:
                    out.add(o)
                    err.add(e)

        future = self._exec_pool.submit(pump)
        timed_out = False
        try:
            future.result(timeout=timeout)
        except FutureTimeout:
            timed_out = True
            self._kill_exec(exec_id)
            try:
                future.result(timeout=10)
            except FutureTimeout:  # something it started still holds the output open
                stream.close()
        finally:
            if not future.done():
                stream.close()
        with _engine_errors("exec"):
            code = api.exec_inspect(exec_id).get("ExitCode")
        return ExecResult(TIMED_OUT_EXIT if timed_out else (code if code is not None else -1), out.text(),
                          err.text() + (f"\n[killed after {timeout}s]\n" if timed_out else ""),
                          truncated=out.truncated or err.truncated, timed_out=timed_out)

    def _kill_exec(self, exec_id: str) -> None:
        """Docker has no API to stop an exec: kill its process tree from the host (dockerd
        reports the host pid; containers live in the host's pid namespace seen from here)."""
        try:
            pid = self.client.api.exec_inspect(exec_id).get("Pid") or 0
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return
        kill_tree(pid)

    def list_managed(self, cloud_label: str) -> dict[str, EngineInstance]:
        with _engine_errors("list"):
            rows = self.client.api.containers(all=True, filters={"label": f"{LABEL_CLOUD}={cloud_label}"})
        return {(r.get("Labels") or {}).get(LABEL_INSTANCE, ""): self._describe_row(r) for r in rows}

    def set_forwards(self, engine_id: str, ports: tuple[PortForward, ...]) -> None:
        """Make the forwards of a container exactly `ports`: those dockerd published at create
        stay as they are, the others are relayed to the container's address by the forwarder."""
        c = self._get(engine_id)
        published = {int(k.split("/")[0]) for k in (c.attrs.get("HostConfig", {}).get("PortBindings") or {})}
        wanted = {p.guest: p for p in ports if p.guest not in published}
        for key in list(self.forwarder.active()):
            if key.startswith(f"{c.id}:") and int(key.rsplit(":", 1)[1]) not in wanted:
                self.forwarder.close(key)
        for guest, p in wanted.items():
            self.forwarder.open(f"{c.id}:{guest}", p.host, self._resolver(c.id, guest))

    def _resolver(self, engine_id: str, guest: int):
        def resolve():
            try:
                attrs = self.client.api.inspect_container(engine_id)
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                return None
            ip = attrs.get("NetworkSettings", {}).get("IPAddress")
            return (ip, guest) if ip and attrs.get("State", {}).get("Running") else None

        return resolve

    # -- internals ----------------------------------------------------------------
    def internals(self, engine_id: str) -> dict:
        """What really runs: host PID, namespaces vs the host's, cgroup limits, the runtime
        chain and the layered rootfs, read live from dockerd and /proc."""
        c = self._get(engine_id)
        with _engine_errors("internals"):
            info = self.client.info()
            image = self.client.api.inspect_image(c.attrs["Image"])
        state = c.attrs.get("State", {})
        pid = state.get("Pid") or 0
        out: dict = {
            "isolation": "container: Linux namespaces + cgroups on the host's kernel",
            "engine": {"name": "docker", "container_id": c.id, "name_in_engine": c.name,
                       "runtime": c.attrs.get("HostConfig", {}).get("Runtime") or info.get("DefaultRuntime")},
            "kernel": {"host": platform.release(), "instance": platform.release(), "shared": True},
            "rootfs": {
                "storage_driver": c.attrs.get("GraphDriver", {}).get("Name"),
                "layers": {k: v for k, v in (c.attrs.get("GraphDriver", {}).get("Data") or {}).items()
                           if k in ("LowerDir", "UpperDir", "MergedDir", "WorkDir")},
                "image": c.attrs.get("Config", {}).get("Image"),
                "image_layers": image.get("RootFS", {}).get("Layers", []),
                "image_size_bytes": image.get("Size"),
            },
            "running": bool(pid),
        }
        if pid:
            proc = hostinfo.process(pid)
            out["pid1"] = {"host_pid": pid, "inside_pid": 1, "cmdline": proc["cmdline"], "rss_bytes": proc["rss_bytes"]}
            out["namespaces"] = hostinfo.namespaces(pid)
            out["cgroup"] = hostinfo.cgroups(pid)
            chain = list(reversed(hostinfo.ancestors(pid)))
            daemons = [{"name": n, "pids": hostinfo.find_processes(n)} for n in ("dockerd", "containerd")]
            out["runtime_chain"] = daemons + [{"name": p["name"], "pids": [p["pid"]], "cmdline": p["cmdline"]}
                                              for p in chain] + [
                {"name": f"{out['engine']['runtime']} (exited after creating the namespaces)", "pids": []},
                {"name": "container PID 1", "pids": [pid], "cmdline": proc["cmdline"]}]
        # The same few facts for every kind, so a VM and a container can be set side by side.
        out["summary"] = {
            "isolation": "namespaces + cgroups, sharing the host kernel",
            "kernel": platform.release(),
            "host_pid": pid or None,
            "host_process": " ".join(out.get("pid1", {}).get("cmdline", [])) or None,
            "host_memory_bytes": (out.get("cgroup", {}).get("limits", {}).get("memory_usage_bytes") if pid else None),
            "image_size_bytes": image.get("Size"),
        }
        return out

    # -- images ------------------------------------------------------------------
    def import_rootfs(self, tar_path: str, repository: str, tag: str) -> str:
        """`docker import` a rootfs tar with /sbin/init as the command; returns the image id."""
        with _engine_errors(f"import {repository}:{tag}"):
            with open(tar_path, "rb") as f:
                self.client.api.import_image_from_data(
                    f, repository=repository, tag=tag, changes=['CMD ["/sbin/init"]']
                )
            return self.client.images.get(f"{repository}:{tag}").id

    def image_exists(self, ref: str) -> bool:
        try:
            with _engine_errors(f"image {ref}"):
                self.client.images.get(ref)
            return True
        except NotFound:
            return False

    def image_size(self, ref: str) -> int | None:
        try:
            with _engine_errors(f"image {ref}"):
                return self.client.images.get(ref).attrs.get("Size")
        except NotFound:
            return None

    def pull(self, ref: str) -> str:
        try:
            with _engine_errors(f"pull {ref}"):
                return self.client.images.pull(ref).id
        except EngineError as e:
            raise BackendUnavailable(
                f"could not pull {ref}: {e.message}", hint="no registry reachable? build images offline with `pocketcloud images build`"
            ) from e

    def remove_image(self, ref: str) -> None:
        with _engine_errors(f"remove image {ref}"):
            try:
                self.client.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass

    # -- helpers -----------------------------------------------------------------
    @staticmethod
    def _describe_row(row: dict) -> EngineInstance:
        """An instance from a container listing (no inspect): state, published ports, address."""
        forwards = {(p["PrivatePort"], p.get("Type", "tcp")): PortForward(p["PrivatePort"], p["PublicPort"], p.get("Type", "tcp"))
                    for p in row.get("Ports") or [] if p.get("PublicPort") and p.get("IP") in ("127.0.0.1", "", "0.0.0.0", None)}
        networks = (row.get("NetworkSettings") or {}).get("Networks") or {}
        ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
        return EngineInstance(
            engine_id=row["Id"],
            state=_STATES.get(row.get("State", ""), "pending"),
            ports=tuple(sorted(forwards.values(), key=lambda p: p.guest)),
            private_ip=ip,
            details={"engine_status": row.get("State"), "status": row.get("Status")},
        )

    def _describe(self, container) -> EngineInstance:
        attrs = container.attrs
        state = attrs.get("State", {})
        status = state.get("Status", container.status)
        forwards = []
        for key, binds in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
            guest, proto = key.split("/")
            for b in binds or []:
                if b.get("HostIp") in ("127.0.0.1", "", "0.0.0.0"):
                    forwards.append(PortForward(int(guest), int(b["HostPort"]), proto))
                    break
        if not forwards:
            # A stopped container has no live bindings; report what it was created with.
            for key, binds in (attrs.get("HostConfig", {}).get("PortBindings") or {}).items():
                guest, proto = key.split("/")
                for b in binds or []:
                    host = int(b["HostPort"]) if b.get("HostPort") else None
                    forwards.append(PortForward(int(guest), host, proto))
        settings = attrs.get("NetworkSettings") or {}
        ip = settings.get("IPAddress") or next(  # on a subnet's network the address is only per network
            (n["IPAddress"] for n in (settings.get("Networks") or {}).values() if n.get("IPAddress")), None)
        return EngineInstance(
            engine_id=container.id,
            state=_STATES.get(status, "pending"),
            ports=tuple(sorted(forwards, key=lambda p: p.guest)),
            private_ip=ip,
            details={
                "engine_status": status,
                "exit_code": state.get("ExitCode"),
                "oom_killed": state.get("OOMKilled"),
                "started_at": state.get("StartedAt"),
                "pid": state.get("Pid"),
            },
        )
