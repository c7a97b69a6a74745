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
there is stopped, the directory it made there is removed. The scripts that run there are in
remote.py. The SSH settings (target, port, identity file, ssh config file: paths, no
secrets) are kept in cluster.json so that `remove-host` and `start-host` reach the machine
the same way.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import time
import uuid
from contextlib import contextmanager
from typing import Callable, Iterator

from ...errors import AlreadyExists, BackendUnavailable, InvalidParameter, InvalidState, NotFound
from . import status as st
from .layout import ClusterState
from .remote import (MARKER, Remote, Ssh, mkfs_script, parse_probe, probe_script, remove_script, render_remote_conf,
                     start_script, stop_script, tar_files, unpack_script)

Progress = Callable[[str], None]

HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DATA_DIR = re.compile(r"^/[A-Za-z0-9._/-]{1,200}$")
OSD_CAPS = ("mon", "allow profile osd", "mgr", "allow profile osd", "osd", "allow *")
MAX_OSDS_PER_HOST = 8


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
        probe = parse_probe(ssh.run(probe_script(remote), timeout=30, what="probe"), state.fsid)
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
            ssh.run(unpack_script(remote, ids), stdin=tar_files(files, ["keys", "osd", *(f"osd/{i}" for i in ids)]),
                    timeout=60, what="copying ceph.conf and the keyrings")
            step("copy", f"ceph.conf and {len(ids)} keyring(s) copied over SSH (stdin, 0600)")
            ssh.run(mkfs_script(remote, made), timeout=timeout, what="ceph-osd --mkfs")
            step("mkfs", f"BlueStore made on {osd_size >> 20} MiB sparse file(s) there")
            for i in ids:
                ssh.run(start_script(state, remote, i), timeout=60, what=f"starting osd.{i}")
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
        _quietly(lambda i=i: ssh.run(stop_script(state, remote, i), timeout=30, what=f"stopping osd.{i}"))
    for o in made:
        _quietly(lambda o=o: cluster.ceph("osd", "purge", str(o["id"]), "--yes-i-really-mean-it", fmt=None))
    if created_dir:
        _quietly(lambda: ssh.run(remove_script(state, remote), timeout=60, what="removing the data directory"))


class _Unreachable:
    """Stands in for an Ssh that cannot be built any more: every step reports why."""

    def __init__(self, why: str):
        self.why = why

    def run(self, command: str, **kw) -> str:
        raise BackendUnavailable(f"cannot reach the machine: {self.why}")


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
        remote = Remote(rec["data_dir"])
        try:
            ssh = ssh or Ssh(**rec["ssh"])
        except InvalidParameter as exc:  # e.g. the identity file is gone: with --force, forget the host anyway
            if not force:
                raise
            ssh = _Unreachable(str(exc))
        if not force:
            try:
                cluster.ceph("osd", "ok-to-stop", *ids, fmt=None, timeout=20)
            except BackendUnavailable as exc:
                raise InvalidState(f"stopping {name}'s OSDs now would leave data without enough replicas ({exc}); "
                                   "wait for recovery (`pocketcloud storage status`) or use --force",
                                   code="NotSafeToRemove") from None
        cluster.ceph("osd", "out", *ids, fmt=None)
        progress(f"osd.{', osd.'.join(ids)} marked out: their data is re-replicated on the other OSDs")
        problems = []
        for i in ids:
            err = _quietly(lambda i=i: ssh.run(stop_script(state, remote, int(i)), timeout=60, what=f"stopping osd.{i}"))
            if err and not force:
                raise BackendUnavailable(f"{err}; the OSDs stay in the cluster, marked out (use --force if {name} "
                                         "is gone for good)")
            problems += [err] if err else []
        for i in ids:
            cluster.ceph("osd", "purge", i, "--yes-i-really-mean-it", fmt=None)
        _quietly(lambda: cluster.ceph("osd", "crush", "rm", name, fmt=None))
        progress(f"osd.{', osd.'.join(ids)} stopped on {name} and purged from the cluster")
        err = _quietly(lambda: ssh.run(remove_script(state, remote), timeout=120, what="removing the data directory"))
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
        ssh.run(start_script(state, remote, i), timeout=60, what=f"starting osd.{i}")
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
