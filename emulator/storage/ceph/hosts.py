"""Other machines' OSDs in this home's cluster (`pocketcloud storage add-host`), joined with
Ceph's own tools over SSH.

What runs where:
- here, as client.admin: `ceph osd new` gives each new OSD its id, `ceph auth get-or-create
  osd.N` makes its key (printed to our stdout: never a file here, never an argument), `ceph
  osd tree` tells when it is up, `ceph osd purge` forgets it;
- there, over SSH: a probe (host name, ceph-osd's version, systemd or not), the files
  unpacked from a tar stream on ssh's stdin (ceph.conf and each OSD's keyring, 0600: no key
  ever on a command line, here or there), `ceph-osd --mkfs` (BlueStore on a sparse file,
  like the OSDs here), then the OSD: a transient systemd unit that restarts it where systemd
  runs, else `ceph-osd` daemonizing itself.

The other machine needs Ceph's OSD package (`apt-get install ceph-osd`) and an SSH login
allowed to run it (root, usually); the two machines must reach each other's cluster address
(OSDs replicate both ways). A failed add rolls back: its OSD ids are purged, what it started
there is stopped, the directory it made there is removed. The SSH settings (target, port,
identity file, ssh config file: paths, no secrets) are kept in cluster.json so that
`remove-host` and `start-host` reach the machine the same way.
"""
from __future__ import annotations

import fcntl
import io
import ipaddress
import os
import re
import shlex
import subprocess
import tarfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

from ...errors import AlreadyExists, BackendUnavailable, InvalidParameter, InvalidState, NotFound
from . import status as st
from .layout import ClusterState, daemon_files, global_section, osd_section

Progress = Callable[[str], None]

SSH_TARGET = re.compile(r"^(?:[a-z_][a-z0-9_.-]{0,31}@)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DATA_DIR = re.compile(r"^/[A-Za-z0-9._/-]{1,200}$")
OSD_CAPS = ("mon", "allow profile osd", "mgr", "allow profile osd", "osd", "allow *")
MARKER = ".pocketcloud-ceph"   # in the remote directory: the fsid of the cluster that owns it
MAX_OSDS_PER_HOST = 8


@dataclass(frozen=True)
class Ssh:
    """How to reach the other machine: `ssh [-F config] [-i identity] [-p port] target`,
    always non-interactive (BatchMode: a missing key fails at once, never prompts)."""
    target: str
    port: int | None = None
    identity: str | None = None
    config: str | None = None

    def __post_init__(self) -> None:
        if not SSH_TARGET.match(self.target or ""):
            raise InvalidParameter(f"{str(self.target)[:80]!r} is not an SSH destination: use USER@HOST or HOST")
        if self.port is not None and not 1 <= int(self.port) <= 65535:
            raise InvalidParameter("the SSH port must be between 1 and 65535")
        for what, path in (("identity", self.identity), ("ssh config", self.config)):
            if path is not None and not (os.path.isabs(path) and os.path.isfile(path)):
                raise InvalidParameter(f"the {what} file {path!r} does not exist (give an absolute path)")

    def argv(self, command: str) -> list[str]:
        argv = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15"]
        if self.config:
            argv += ["-F", self.config]
        if self.identity:
            argv += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        if self.port:
            argv += ["-p", str(self.port)]
        return [*argv, "--", self.target, "sh -c " + shlex.quote(command)]

    def run(self, command: str, *, stdin: bytes = b"", timeout: float = 120, what: str = "") -> str:
        try:
            proc = subprocess.run(self.argv(command), input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BackendUnavailable(f"ssh {self.target}: {what or 'command'} did not finish within "
                                     f"{timeout:.0f} s") from None
        except FileNotFoundError:
            raise BackendUnavailable("ssh is not installed here (Debian: openssh-client)") from None
        if proc.returncode != 0:
            tail = " / ".join(proc.stderr.decode(errors="replace").strip().splitlines()[-3:])
            where = "could not log in" if proc.returncode == 255 else f"{what or 'command'} failed ({proc.returncode})"
            raise BackendUnavailable(f"ssh {self.target}: {where}: {tail or 'no output'}")
        return proc.stdout.decode(errors="replace")

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Remote:
    """The files of this cluster on the other machine, all under one directory."""
    root: str

    @property
    def conf(self) -> str:
        return f"{self.root}/ceph.conf"

    def osd(self, osd_id: int) -> str:
        return f"{self.root}/osd/{osd_id}"

    def pid_file(self, osd_id: int) -> str:
        return f"{self.root}/run/ceph-osd.{osd_id}.pid"


def render_remote_conf(state: ClusterState, remote: Remote, address: str, name: str, osd_size: int) -> str:
    """ceph.conf of the other machine: the cluster's monitor, its own address, its OSDs under
    the CRUSH host NAME (the same [global] as here, so both sides agree on auth and messenger)."""
    r = remote.root
    return f"""# written by pocketcloud storage add-host; the cluster lives at {state.address}
{global_section(state, address, f"{r}/keys", f"{r}/run", r)}
[osd]
{daemon_files(f"{r}/log", f"{r}/run")}{osd_section(f"{r}/osd", osd_size)}crush location = root=default host={name}
"""


def unit_name(state: ClusterState, osd_id: int) -> str:
    return f"pocketcloud-ceph-{state.fsid[:8]}-osd-{osd_id}"


def _probe_script(remote: Remote) -> str:
    d = shlex.quote(remote.root)
    return ("hostname -s; "
            "if command -v ceph-osd >/dev/null 2>&1; then ceph-osd --version; else echo missing; fi; "
            "if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then echo systemd; "
            "else echo plain; fi; "
            f"if [ ! -e {d} ]; then echo new; elif [ -f {d}/{MARKER} ]; then cat {d}/{MARKER}; "
            f"elif [ -z \"$(ls -A {d})\" ]; then echo empty; else echo foreign; fi")


def _unpack_script(remote: Remote, osd_ids: list[int]) -> str:
    d = shlex.quote(remote.root)
    stale = " ".join(shlex.quote(remote.osd(i)) for i in osd_ids)
    # ids are reused after a purge: an OSD directory of an earlier member with the same id goes
    return (f"set -e; umask 077; mkdir -p {d}; rm -rf {stale}; "
            f"tar -x -o -C {d} -f -; mkdir -p {d}/run {d}/log {d}/crash {d}/tmp")


def _mkfs_script(remote: Remote, osds: list[dict]) -> str:
    conf = shlex.quote(remote.conf)
    # in parallel, as here: the BlueStore files overlap their fsyncs
    jobs = " ".join(f"ceph-osd -c {conf} -i {o['id']} --mkfs --osd-uuid {o['uuid']} "
                    f">{shlex.quote(remote.root)}/log/mkfs.{o['id']}.out 2>&1 & pids=\"$pids $!\";" for o in osds)
    return (f"set -e; pids=''; {jobs} rc=0; for p in $pids; do wait $p || rc=1; done; "
            f"if [ $rc != 0 ]; then tail -n 3 {shlex.quote(remote.root)}/log/mkfs.*.out >&2; fi; exit $rc")


def _start_script(state: ClusterState, remote: Remote, osd_id: int) -> str:
    conf, unit = shlex.quote(remote.conf), unit_name(state, osd_id)
    out = shlex.quote(f"{remote.root}/log/osd.{osd_id}.out")
    return (f"{_alive(remote, osd_id)} && exit 0; "
            "if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then "
            f"systemctl reset-failed {unit}.service 2>/dev/null || true; "
            f"systemd-run --quiet --collect --unit={unit} -p Restart=on-failure -p RestartSec=5 "
            f"\"$(command -v ceph-osd)\" -f -c {conf} -i {osd_id}; "
            f"else ceph-osd -c {conf} -i {osd_id} </dev/null >>{out} 2>&1; fi")


def _alive(remote: Remote, osd_id: int) -> str:
    """Shell: true if the OSD's pid file names a live ceph-osd of this configuration (not a
    reused pid, not a zombie nobody reaped)."""
    pid_file, conf = shlex.quote(remote.pid_file(osd_id)), shlex.quote(remote.conf)
    return (f"{{ pid=$(cat {pid_file} 2>/dev/null) && [ -n \"$pid\" ] && "
            f"tr '\\0' ' ' </proc/$pid/cmdline 2>/dev/null | grep -qF -- {conf} && "
            f"! grep -q '^State:.*Z' /proc/$pid/status; }}")


def _stop_script(state: ClusterState, remote: Remote, osd_id: int) -> str:
    unit = unit_name(state, osd_id)
    return ("if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then "
            f"systemctl stop {unit}.service 2>/dev/null || true; fi; "
            f"if {_alive(remote, osd_id)}; then kill $pid; i=0; "
            f"while {_alive(remote, osd_id)} && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; "
            f"if {_alive(remote, osd_id)}; then kill -9 $pid; fi; fi; true")


def _remove_script(state: ClusterState, remote: Remote) -> str:
    d = shlex.quote(remote.root)
    return (f"if [ ! -e {d} ]; then exit 0; fi; "
            f"if [ \"$(cat {d}/{MARKER} 2>/dev/null)\" = {state.fsid} ]; then rm -rf {d}; "
            f"else echo '{remote.root} does not belong to cluster {state.fsid}: left alone' >&2; exit 3; fi")


def _tar(files: dict[str, str], dirs: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o700, int(time.time())
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def parse_probe(out: str, fsid: str) -> dict:
    lines = [x.strip() for x in out.strip().splitlines()]
    if len(lines) < 4:
        raise BackendUnavailable(f"the other machine answered the probe oddly: {out[:200]!r}")
    m = re.search(r"ceph version (\S+)", lines[1])
    where = lines[3]
    return {"hostname": lines[0], "version": m.group(1) if m else None, "systemd": lines[2] == "systemd",
            "dir": "ours" if where == fsid else where if where in ("new", "empty") else "foreign"}


def check_address(value: str, cluster: ClusterState) -> str:
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        raise InvalidParameter(f"--address {str(value)[:60]!r} is not an IPv4 address") from None
    if ip.is_loopback or ip.is_unspecified or ip.is_multicast:
        raise InvalidParameter(f"--address {ip}: give the other machine's address on the network it shares with "
                               f"this one ({cluster.address})")
    if str(ip) == cluster.address:
        raise InvalidParameter(f"--address {ip} is this machine's cluster address; give the other machine's")
    return str(ip)


@contextmanager
def _hosts_lock(root) -> Iterator[None]:
    """One add/remove at a time per cluster (cluster.json is read, changed and written)."""
    fd = os.open(root / "hosts.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidState("another `storage add-host` or `remove-host` is running on this cluster") from None
        yield
    finally:
        os.close(fd)


def _record(state: ClusterState, name: str) -> dict:
    for h in state.hosts:
        if h["name"] == name:
            return h
    known = ", ".join(h["name"] for h in state.hosts) or "none"
    raise NotFound(f"no host {name!r} was added to this cluster (added hosts: {known})", code="NoSuchHost")


def _joined(cluster) -> ClusterState:
    state = cluster.state
    if state is None or not state.bootstrapped:
        raise NotFound(f"no Ceph cluster in {cluster.layout.root}: start the cloud once with "
                       "POCKETCLOUD_S3_ENGINE=ceph POCKETCLOUD_CEPH_ADDRESS=ADDR")
    return state


def _wait_up(cluster, ids: list[int], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        tree = cluster.ceph("osd", "tree", timeout=15)
        up = {n["id"] for n in tree.get("nodes", []) if n.get("type") == "osd" and n.get("status") == "up"}
        if set(ids) <= up:
            return
        if time.monotonic() > deadline:
            raise BackendUnavailable(f"{what}: osd.{', osd.'.join(str(i) for i in sorted(set(ids) - up))} not up "
                                     f"within {timeout:.0f} s (see the logs under the host's data directory)")
        time.sleep(0.5)


def add_host(cluster, ssh: Ssh, *, address: str, name: str | None = None, osds: int = 1,
             osd_size: int | None = None, data_dir: str | None = None, timeout: float = 180,
             progress: Progress = print) -> dict:
    """Join OSDs on another machine to `cluster` (a CephCluster of this home); the host's record
    with the seconds each step took."""
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    last = t0

    def step(what: str, line: str) -> None:
        nonlocal last
        now = time.monotonic()
        timings[what] = round(now - last, 2)
        last = now
        progress(f"[{now - t0:5.1f} s] {line}")

    state = _joined(cluster)
    if ipaddress.IPv4Address(state.address).is_loopback:
        raise InvalidState(f"this cluster's monitor listens on {state.address} only, which no other machine reaches; "
                           "a cluster for more than one machine is made with POCKETCLOUD_CEPH_ADDRESS=ADDR "
                           "(an address of this machine the others reach) in a new home", code="SingleHostCluster")
    address = check_address(address, state)
    if not 1 <= osds <= MAX_OSDS_PER_HOST:
        raise InvalidParameter(f"--osds must be between 1 and {MAX_OSDS_PER_HOST}")
    osd_size = osd_size or state.osd_size
    if not (1 << 30) <= osd_size <= (1 << 40):
        raise InvalidParameter("--osd-size must be between 1 GiB and 1 TiB")
    data_dir = (data_dir or f"/var/lib/pocketcloud-ceph/{state.fsid}").rstrip("/")
    if not DATA_DIR.match(data_dir) or "/../" in f"{data_dir}/" or "/./" in f"{data_dir}/" or data_dir.count("/") < 2:
        raise InvalidParameter(f"--data-dir {data_dir[:80]!r}: give an absolute path below / (letters, digits, . _ -)")
    remote = Remote(data_dir)
    with _hosts_lock(cluster.layout.root):
        state = _joined(cluster)
        if any(h["address"] == address for h in state.hosts):
            raise AlreadyExists(f"a host with the address {address} is already part of the cluster", code="HostExists")
        probe = parse_probe(ssh.run(_probe_script(remote), timeout=30, what="probe"), state.fsid)
        if probe["version"] is None:
            raise BackendUnavailable(f"{ssh.target} has no ceph-osd: install it there "
                                     "(Debian: apt-get install --no-install-recommends ceph-osd)")
        if probe["version"].split(".")[0] != (state.version or probe["version"]).split(".")[0]:
            raise InvalidState(f"{ssh.target} runs Ceph {probe['version']}, this cluster {state.version}: "
                               "install the same major release there")
        if probe["dir"] == "foreign":
            raise InvalidState(f"{data_dir} on {ssh.target} holds files that are not this cluster's: "
                               "give another --data-dir")
        name = name or probe["hostname"].lower()
        if not HOST_NAME.match(name):
            raise InvalidParameter(f"host name {name[:64]!r}: lower-case letters, digits and '-' (give --name)")
        taken = {h["name"] for h in st.hosts(cluster.ceph("osd", "tree", timeout=15))} | {h["name"] for h in state.hosts}
        if name in taken:
            raise AlreadyExists(f"the cluster already has a host named {name!r} (give another --name)",
                                code="HostExists")
        step("probe", f"{ssh.target} is {probe['hostname']}: Ceph {probe['version']}, "
                      f"{'systemd' if probe['systemd'] else 'no systemd'}; host {name!r}, data in {data_dir}")
        made: list[dict] = []
        started: list[int] = []
        try:
            for _ in range(osds):
                osd_uuid = str(uuid.uuid4())
                made.append({"id": int(str(cluster.ceph("osd", "new", osd_uuid, fmt=None)).strip()), "uuid": osd_uuid})
            keyrings = {o["id"]: str(cluster.ceph("auth", "get-or-create", f"osd.{o['id']}", *OSD_CAPS, fmt=None))
                        for o in made}
            ids = [o["id"] for o in made]
            step("keys", f"osd.{', osd.'.join(map(str, ids))} allocated with their keys")
            files = {MARKER: state.fsid, "ceph.conf": render_remote_conf(state, remote, address, name, osd_size),
                     **{f"keys/ceph.osd.{i}.keyring": ring for i, ring in keyrings.items()}}
            ssh.run(_unpack_script(remote, ids), stdin=_tar(files, ["keys", "osd", *(f"osd/{i}" for i in ids)]),
                    timeout=60, what="copying ceph.conf and the keyrings")
            step("copy", f"ceph.conf and {len(ids)} keyring(s) copied over SSH (stdin, 0600)")
            ssh.run(_mkfs_script(remote, made), timeout=timeout, what="ceph-osd --mkfs")
            step("mkfs", f"BlueStore made on {osd_size >> 20} MiB sparse file(s) there")
            for i in ids:
                ssh.run(_start_script(state, remote, i), timeout=60, what=f"starting osd.{i}")
                started.append(i)
            _wait_up(cluster, ids, timeout, "the new OSDs")
            step("up", f"osd.{', osd.'.join(map(str, ids))} up and in, under CRUSH host {name}")
        except BaseException as exc:
            progress(f"add-host failed ({exc}): rolling back")
            _roll_back(cluster, state, ssh, remote, made, started, created_dir=probe["dir"] in ("new", "empty"))
            raise
        record = {"name": name, "address": address, "ssh": ssh.to_dict(), "data_dir": data_dir, "osds": made,
                  "osd_size": osd_size, "systemd": probe["systemd"], "version": probe["version"],
                  "added_at": time.time()}
        state = cluster.state
        state.hosts.append(record)
        cluster.layout.write_state(state)
    return {**record, "timings": timings, "seconds": round(time.monotonic() - t0, 2)}


def _roll_back(cluster, state: ClusterState, ssh: Ssh, remote: Remote, made: list[dict], started: list[int],
               created_dir: bool) -> None:
    for i in started:
        _quietly(lambda i=i: ssh.run(_stop_script(state, remote, i), timeout=30, what=f"stopping osd.{i}"))
    for o in made:
        _quietly(lambda o=o: cluster.ceph("osd", "purge", str(o["id"]), "--yes-i-really-mean-it", fmt=None))
    if created_dir:
        _quietly(lambda: ssh.run(_remove_script(state, remote), timeout=60, what="removing the data directory"))


def _quietly(fn: Callable[[], object]) -> str | None:
    try:
        fn()
        return None
    except Exception as exc:  # noqa: BLE001 - a clean-up step reports and goes on with the others
        return str(exc)


def remove_host(cluster, name: str, *, force: bool = False, ssh: Ssh | None = None,
                progress: Progress = print) -> dict:
    """Take a host's OSDs out of the cluster, stop them there, forget them, remove their files.

    Refused while stopping them would leave some PG without enough replicas to serve
    (`ceph osd ok-to-stop`), unless `force` (e.g. the machine is gone for good)."""
    t0 = time.monotonic()
    with _hosts_lock(cluster.layout.root):
        state = _joined(cluster)
        rec = _record(state, name)
        ids = [str(o["id"]) for o in rec["osds"]]
        if not force:
            try:
                cluster.ceph("osd", "ok-to-stop", *ids, fmt=None, timeout=20)
            except BackendUnavailable as exc:
                raise InvalidState(f"stopping {name}'s OSDs now would leave data without enough replicas ({exc}); "
                                   "wait for recovery (`pocketcloud storage status`) or use --force",
                                   code="NotSafeToRemove") from None
        cluster.ceph("osd", "out", *ids, fmt=None)
        progress(f"osd.{', osd.'.join(ids)} marked out: their data is re-replicated on the other OSDs")
        ssh, remote = ssh or Ssh(**rec["ssh"]), Remote(rec["data_dir"])
        problems = []
        for i in ids:
            err = _quietly(lambda i=i: ssh.run(_stop_script(state, remote, int(i)), timeout=60, what=f"stopping osd.{i}"))
            if err and not force:
                raise BackendUnavailable(f"{err}; the OSDs stay in the cluster, marked out (use --force if {name} "
                                         "is gone for good)")
            problems += [err] if err else []
        for i in ids:
            cluster.ceph("osd", "purge", i, "--yes-i-really-mean-it", fmt=None)
        _quietly(lambda: cluster.ceph("osd", "crush", "rm", name, fmt=None))
        progress(f"osd.{', osd.'.join(ids)} stopped on {name} and purged from the cluster")
        err = _quietly(lambda: ssh.run(_remove_script(state, remote), timeout=120, what="removing the data directory"))
        problems += [err] if err else []
        state = cluster.state
        state.hosts = [h for h in state.hosts if h["name"] != name]
        cluster.layout.write_state(state)
    return {"name": name, "osds": [int(i) for i in ids], "problems": problems,
            "seconds": round(time.monotonic() - t0, 2)}


def start_host(cluster, name: str, *, timeout: float = 120, ssh: Ssh | None = None,
               progress: Progress = print) -> dict:
    """Start a host's OSDs again (after that machine rebooted, or they were killed); those
    still running are left alone."""
    t0 = time.monotonic()
    state = _joined(cluster)
    rec = _record(state, name)
    ssh, remote = ssh or Ssh(**rec["ssh"]), Remote(rec["data_dir"])
    ids = [o["id"] for o in rec["osds"]]
    for i in ids:
        ssh.run(_start_script(state, remote, i), timeout=60, what=f"starting osd.{i}")
    _wait_up(cluster, ids, timeout, f"{name}'s OSDs")
    progress(f"osd.{', osd.'.join(map(str, ids))} on {name} up")
    return {"name": name, "osds": ids, "seconds": round(time.monotonic() - t0, 2)}


def view(cluster) -> list[dict]:
    """Every host of the cluster: this one and the added ones, with their OSDs as the cluster
    sees them (up/down, in/out), addresses and where the OSDs' files are."""
    state = _joined(cluster)
    added = {h["name"]: h for h in state.hosts}
    local_ids = {o["id"] for o in state.osds}
    out = []
    for h in st.hosts(cluster.ceph("osd", "tree", timeout=15)):
        rec = added.get(h["name"])
        ids = {o["id"] for o in h["osds"]}
        if rec:
            h.update(role="added", address=rec["address"], ssh=rec["ssh"]["target"], data_dir=rec["data_dir"],
                     start="systemd unit" if rec.get("systemd") else "ceph-osd daemon")
        elif ids & local_ids or not ids:
            h.update(role="cluster", address=state.address, ssh=None, data_dir=str(cluster.layout.root / "osd"),
                     start="supervised by pocketcloud serve")
        else:
            h.update(role="unknown", address=None, ssh=None, data_dir=None, start=None)
        out.append(h)
    return out
