"""A real pocketcloud server process for integration tests, and a small REST client."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from emulator.accounts import read_credentials
from emulator.config import Config

REPO = Path(__file__).resolve().parents[2]
PC = str(Path(sys.executable).with_name("pocketcloud"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_subnet() -> str:
    """A 10.213.X.0/24 that no host route and no libvirt network uses yet."""
    import random
    import subprocess as sp

    used = sp.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    used += sp.run(["virsh", "-c", "qemu:///system", "net-list", "--all", "--name"], capture_output=True, text=True).stdout
    for name in used.split():
        if name.startswith("pctest-"):
            used += sp.run(["virsh", "-c", "qemu:///system", "net-dumpxml", name], capture_output=True, text=True).stdout
    octets = [o for o in range(64, 250) if f"10.213.{o}." not in used]
    return f"10.213.{random.choice(octets)}.0/24"


class Api:
    """requests with HTTP Basic, returning (status, json) so tests assert both."""

    def __init__(self, base: str, key_id: str, secret: str):
        self.base, self.key_id, self.secret = base, key_id, secret
        self.s = requests.Session()
        self.s.auth = (key_id, secret)

    def __call__(self, method: str, path: str, **kw):
        r = self.s.request(method, f"{self.base}/api/v1{path}", timeout=300, **kw)
        try:
            body = r.json()
        except ValueError:
            body = r.text
        return r.status_code, body

    def ok(self, method: str, path: str, expect: int = 200, **kw):
        status, body = self(method, path, **kw)
        assert status == expect, (method, path, status, body)
        return body


    def wait_state(self, iid: str, want: str = "running", timeout: float = 300) -> dict:
        """GET the instance until it is `want` (a VM launch answers `pending` at once and boots
        in the server); fails at once on terminated/stopped when waiting for running."""
        deadline = time.monotonic() + timeout
        while True:
            inst = self.ok("GET", f"/instances/{iid}")
            if inst["state"] == want:
                return inst
            assert not (want == "running" and inst["state"] in ("terminated", "stopped")), inst
            assert time.monotonic() < deadline, f"{iid} still {inst['state']} after {timeout}s"
            time.sleep(0.5)

    def launch_vm(self, **payload) -> dict:
        """POST a VM launch (answered pending) and wait until it runs."""
        inst = self.ok("POST", "/instances", 201, json={"kind": "vm", **payload})
        assert inst["state"] == "pending", inst
        return self.wait_state(inst["id"])


# One file per test cloud, named after its port: the pytest process that owns it, its home
# and libvirt network (see reap_dead_test_clouds).
OWNERS = Path("/tmp/pctest-owners")


class Server:
    def __init__(self, home: Path, log_dir: Path):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.console_port = free_port()
        self.log_path = log_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self._console_url: str | None = None
        # Each test cloud gets its own libvirt network, removed at teardown.
        self.vm_network = f"pctest-{self.port}"
        self.vm_cidr = free_subnet()
        self.env = {**os.environ, "POCKETCLOUD_HOME": str(home), "POCKETCLOUD_PORT": str(self.port),
                    "POCKETCLOUD_CONSOLE_PORT": str(self.console_port),
                    "POCKETCLOUD_VM_NETWORK": self.vm_network, "POCKETCLOUD_VM_CIDR": self.vm_cidr,
                    "POCKETCLOUD_HYPERVISOR": os.environ.get("POCKETCLOUD_HYPERVISOR", "auto")}
        # Who owns this cloud, so that a later session can clean up after a killed one.
        OWNERS.mkdir(exist_ok=True)
        (OWNERS / f"{self.port}.json").write_text(json.dumps(
            {"pid": os.getpid(), "home": str(home), "network": self.vm_network, "cidr": self.vm_cidr}))

    def forget_owner(self) -> None:
        """This cloud is cleaned up: nothing is left for a later session to reap."""
        (OWNERS / f"{self.port}.json").unlink(missing_ok=True)

    @property
    def console_url(self) -> str:
        """The console's origin, as the server reports it (its own port)."""
        if self._console_url is None:
            info = self.admin.ok("GET", "/info")
            self._console_url = info.get("console_url", self.url).removesuffix("/ui")
        return self._console_url

    def cli(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([PC, *args], env=self.env, capture_output=True, text=True, check=check, **kw)

    def start(self) -> None:
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([PC, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                # The first answer after a (re)start waits for reconcile, which can take
                # seconds on a loaded machine: a slow answer is not a dead server.
                if requests.get(f"{self.url}/api/v1/health", timeout=10).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer within 60s: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def admin(self) -> Api:
        creds = read_credentials(self.home / "credentials")
        return Api(self.url, creds.key_id, creds.secret)

    def new_user(self, name: str, **extra) -> Api:
        body = self.admin.ok("POST", "/accounts", 201, json={"name": name, **extra})
        return Api(self.url, body["access_key_id"], body["secret_access_key"])


def s3_engines() -> list[str]:
    """The S3 engines the S3 suites run on: POCKETCLOUD_TEST_S3_ENGINES, comma-separated
    (`default` is the engine a server picks by itself; e.g. `default,ceph`)."""
    return [e.strip() for e in os.environ.get("POCKETCLOUD_TEST_S3_ENGINES", "default").split(",") if e.strip()]


def start_s3_server(home: Path, log_dir: Path, engine: str, **env: str) -> Server:
    """A server whose S3 engine is `engine` ('default': its own choice), once S3 serves."""
    srv = Server(home, log_dir)
    srv.env.update(env)
    if engine != "default":
        srv.env["POCKETCLOUD_S3_ENGINE"] = engine
    srv.start()
    deadline = time.monotonic() + 300
    while srv.admin.ok("GET", "/info")["storage"].get("status") != "running":
        if time.monotonic() > deadline:
            srv.stop()
            raise RuntimeError(f"the {engine} S3 engine did not start: {srv.log_path.read_text()[-2000:]}")
        time.sleep(0.5)
    return srv
class Cli:
    def __init__(self, server, api, home: Path):
        self.server, self.api, self.home = server, api, home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POCKETCLOUD_"))}
        # The CLI's own home (where `keys create` saves private keys) is not the server's.
        self.env.update(POCKETCLOUD_ENDPOINT=server.url, AWS_ACCESS_KEY_ID=api.key_id,
                        AWS_SECRET_ACCESS_KEY=api.secret, POCKETCLOUD_HOME=str(home))

    def __call__(self, *args: str, rc: int | None = 0, input: str | None = None, env: dict | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run([PC, *args], env={**self.env, **(env or {})}, capture_output=True, text=True,
                              input=input, timeout=timeout)
        if rc is not None:
            assert proc.returncode == rc, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *args: str, **kw):
        proc = self("-o", "json", *args, **kw)
        return json.loads(proc.stdout)


def remove_leftovers(server: Server, docker_client) -> tuple[list[str], list[str]]:
    """Remove what a cloud left in the engines (its containers, its VMs, its libvirt
    network, its volumes) and return (container names, instance ids of VMs) that were still there."""
    from emulator.compute.engines import build_drivers

    home = Path(server.home)
    label = Config(home=home).instance_label
    containers = docker_client.containers.list(all=True, filters={"label": f"pocketcloud.cloud={label}"})
    for c in containers:
        c.remove(force=True)
    vms = build_drivers(Config(home=home, vm_network=server.vm_network, vm_cidr=server.vm_cidr))["vm"]
    domains = vms.list_managed(label)
    for e in domains.values():
        vms.terminate(e.engine_id)
    vms.remove_network()
    remove_volume_pool(server)  # its pool, mounts and exports too (the leak check reports them first)
    vms.remove_host_files()
    return [c.name for c in containers], sorted(domains)


def vm_area(home: Path) -> Path:
    """The cloud's directory QEMU (as libvirt-qemu) reaches: instance dirs, staged images,
    volumes and snapshots."""
    from emulator.compute.libvirt.qemu_area import DEFAULT_ROOT

    return DEFAULT_ROOT / Config(home=Path(home)).instance_label


def remove_snapshot_images(label: str) -> list[str]:
    """Remove a cloud's container root snapshots and its AMIs' container forms (Docker images
    labelled with it), and the containers made to export an image; return their snapshot and
    AMI ids (and the containers' ids)."""
    import docker

    client = docker.from_env()
    try:
        left = []
        for kind in ("pocketcloud.snapshot", "pocketcloud.ami"):
            found = [i for i in client.images.list(filters={"label": [f"pocketcloud.cloud={label}", kind]})
                     if kind == "pocketcloud.snapshot" or "pocketcloud.snapshot" not in i.labels]  # (inherited)
            for img in found:
                client.images.remove(img.id, force=True)
            left += [img.labels.get(kind, img.id) for img in found]
        for c in client.containers.list(all=True, filters={"label": f"pocketcloud.export={label}"}):
            c.remove(force=True)
            left.append(c.short_id)
        return left
    finally:
        client.close()


def remove_volume_pool(server: Server) -> list[str]:
    """Remove a cloud's storage pool (and any volume file still in it), its containers' host
    mounts and exports, its snapshot files; return what was still there (volume and snapshot
    ids, mount points): a test that created one and did not delete it, or a mount its detach
    did not undo."""
    import shutil

    from emulator.compute.hostmount import HostMounts
    from emulator.volumes.pool import VolumePool

    home = Path(server.home)
    config = Config(home=home)
    area = vm_area(home)
    mounts = HostMounts(home / "volume-mounts", home / "volume-run")
    left = mounts.exports() + mounts.remove_all()
    pool = VolumePool(config.libvirt_uri, config.instance_label, area / "volumes")
    left += pool.files()
    for snap in (area / "snapshots").glob("snap-*.qcow2"):
        left.append(snap.stem)
    left += sorted(p.name for p in (area / "amis").glob("ami-*")) + sorted(p.name for p in (area / "amis").glob(".convert-*"))
    left += remove_snapshot_images(config.instance_label)
    pool.remove()
    for name in ("volumes", "snapshots", "amis"):
        shutil.rmtree(area / name, ignore_errors=True)
    try:
        area.rmdir()
    except OSError:
        pass
    return left


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return b"pytest" in Path(f"/proc/{pid}/cmdline").read_bytes()  # not a recycled pid
    except OSError:
        return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def reap_dead_test_clouds(docker_client) -> list[str]:
    """Remove the engine objects of test clouds whose pytest process is gone (a killed or
    timed-out run never reached its leak check): their containers, VMs, libvirt network, QEMU
    area and volumes; and `pctest-PORT` networks (with their domains) older than the owner
    files, when nothing listens on PORT, and `pctest-PID` networks of the VM driver tests whose
    pytest is gone (a live session's network is never touched: sessions may run side by side).
    Returns what was reaped, for the session's log."""
    import types

    import libvirt

    reaped = []
    owned = set()
    for f in sorted(OWNERS.glob("*.json")) if OWNERS.is_dir() else []:
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError):
            f.unlink(missing_ok=True)
            continue
        owned.add(info.get("network"))
        if _alive(int(info.get("pid", 0))):
            continue
        srv = types.SimpleNamespace(home=Path(info["home"]), vm_network=info["network"], vm_cidr=info["cidr"])
        try:
            containers, domains = remove_leftovers(srv, docker_client)
            left = remove_networks(srv, docker_client)  # its VPC bridges, Docker networks, nft tables
            if left:
                reaped.append(f"{info['network']}: networks not removed: {', '.join(left)}")
            reaped += [f"{info['network']}: {', '.join(containers + domains) or 'network only'}"]
        except Exception as e:  # noqa: BLE001 - best effort: the next session tries again
            reaped.append(f"{info['network']}: not reaped ({e})")
            continue
        f.unlink(missing_ok=True)
    conn = libvirt.open("qemu:///system")
    try:
        for net in conn.listAllNetworks():
            name = net.name()
            if not name.startswith("pctest-") or name in owned or not name[7:].isdigit():
                continue
            n = int(name[7:])  # a test cloud's port, or the pid of the pytest running the VM driver tests
            if _alive(n) or (n < 65536 and _listening(n)):
                continue
            for dom in conn.listAllDomains():
                if f"network='{name}'" in dom.XMLDesc(0):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
                    reaped.append(f"{name}: domain {dom.name()}")
            if net.isActive():
                net.destroy()
            net.undefine()
            reaped.append(f"{name}: network")
    finally:
        conn.close()
    return reaped
def remove_networks(server: Server, docker_client) -> list[str]:
    """Tear down a cloud's VPC networks (bridges, Docker networks, nftables tables, dnsmasq: they
    outlive the server by design) and return what was still there afterwards, its libvirt
    network included (remove_leftovers removes that one)."""
    import libvirt

    from emulator.state import Store
    from emulator.vpc_network import VpcNetwork

    config = Config(home=Path(server.home))
    net = VpcNetwork(config, Store(config.db_path), lambda: docker_client)
    problems = net.teardown() + net.leftovers()
    conn = libvirt.open(config.libvirt_uri)
    try:
        if server.vm_network in conn.listNetworks() + conn.listDefinedNetworks():
            problems.append(f"libvirt network {server.vm_network}")
    finally:
        conn.close()
    return problems
