"""Where one home's Ceph cluster lives on disk, its persisted identity, and its ceph.conf.

Everything of a cluster sits under HOME/storage/ceph (0700): the config, the keyrings
(keys/, 0600 each), the monitor, manager and OSD data (OSDs are BlueStore on sparse files),
daemon logs, admin sockets, and cluster.json — the fsid and the ports chosen at bootstrap, so
several clouds on one host never share a cluster or a port. ceph.conf is rendered from
cluster.json on every start: a code change to the settings reaches existing clusters too.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

PACKAGES = ("ceph-mon", "ceph-osd", "ceph-mgr", "radosgw", "ceph-common")
# binary -> the Debian package that ships it (ceph-base comes with ceph-mon/ceph-osd)
BINARIES = {"ceph-mon": "ceph-mon", "ceph-osd": "ceph-osd", "ceph-mgr": "ceph-mgr", "radosgw": "radosgw",
            "ceph": "ceph-common", "ceph-authtool": "ceph-common", "radosgw-admin": "ceph-common",
            "rados": "ceph-common", "monmaptool": "ceph-mon"}
MON_ID = "a"
MGR_ID = "x"
RGW_NAME = "client.rgw.pc"
OSD_COUNT = 3
RGW_UID = "pocketcloud"


def missing_packages(which=shutil.which) -> list[str]:
    """The Debian packages whose programs are not on PATH (empty: Ceph can run here)."""
    return sorted({pkg for binary, pkg in BINARIES.items() if not which(binary)})


def tool(name: str) -> str:
    return shutil.which(name) or name


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, replacing it atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@dataclass
class ClusterState:
    """cluster.json: what a bootstrap decided, read back by every later start."""
    fsid: str
    mon_port: int
    rgw_port: int
    osd_size: int
    osds: list[dict] = field(default_factory=list)     # [{"id": 0, "uuid": "..."}] on this host
    bootstrapped: bool = False
    address: str = "127.0.0.1"                          # the monitor's and the OSDs' (public) address
    hosts: list[dict] = field(default_factory=list)    # other machines' OSDs (hosts.py: HostRecord)
    created_at: float = 0.0
    version: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ClusterState":
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class Layout:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.conf = self.root / "ceph.conf"
        self.state_file = self.root / "cluster.json"
        self.keys = self.root / "keys"
        self.run = self.root / "run"
        self.log = self.root / "log"
        self.hold = self.root / "hold"
        self.lock_file = self.root / ".lock"
        self.rgw_user_file = self.keys / "rgw-user.json"

    def make_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        for d in (self.keys, self.run, self.log, self.hold, self.root / "mon", self.root / "mgr", self.root / "osd",
                  self.root / "rgw", self.root / "crash", self.root / "tmp"):
            d.mkdir(exist_ok=True, mode=0o700)

    def secure_keys(self) -> None:
        """Keyrings 0600: `ceph auth get-or-create -o` writes them world-readable."""
        for f in self.keys.iterdir():
            f.chmod(0o600)

    def keyring(self, name: str) -> Path:
        return self.keys / f"ceph.{name}.keyring"

    def mon_data(self) -> Path:
        return self.root / "mon" / MON_ID

    def mgr_data(self) -> Path:
        return self.root / "mgr" / MGR_ID

    def osd_data(self, osd_id: int) -> Path:
        return self.root / "osd" / str(osd_id)

    def read_state(self) -> ClusterState | None:
        try:
            return ClusterState.from_json(self.state_file.read_text())
        except (FileNotFoundError, ValueError, TypeError, KeyError):
            return None

    def write_state(self, state: ClusterState) -> None:
        write_private(self.state_file, state.to_json())

    def is_held(self, name: str) -> bool:
        return (self.hold / name).exists()


OSD_MEMORY_TARGET = 939524096  # the default is 4 GiB per OSD


def daemon_files(log: Path | str, run: Path | str) -> str:
    """Log file, admin socket and pid file, set for daemons only (concurrent CLI calls must
    not share one admin socket)."""
    return (f"log file = {log}/$cluster-$name.log\n"
            f"admin socket = {run}/$cluster-$name.asok\n"
            f"pid file = {run}/$cluster-$name.pid\n")


def osd_section(data: Path | str, size: int) -> str:
    return f"""osd data = {data}/$id
osd objectstore = bluestore
bluestore block create = true
bluestore block size = {size}
osd memory target = {OSD_MEMORY_TARGET}
"""


def global_section(state: ClusterState, address: str, keys: Path | str, run: Path | str, root: Path | str) -> str:
    """[global] of every machine of the cluster: the same monitor and auth, its own address."""
    return f"""[global]
fsid = {state.fsid}
mon host = v2:{state.address}:{state.mon_port}
mon initial members = {MON_ID}
public addr = {address}
cluster addr = {address}
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
keyring = {keys}/$cluster.$name.keyring
run dir = {run}
crash dir = {root}/crash
tmp dir = {root}/tmp
log to stderr = false
err to stderr = true
"""


def render_conf(layout: Layout, state: ClusterState) -> str:
    """ceph.conf for this host's daemons, bound to the cluster's address (loopback unless the
    cluster was made for more than one machine).

    Why each unusual setting: chooseleaf type 0 puts the three replicas on three OSDs, on
    whichever hosts (the default wants three hosts and leaves every PG undersized on one);
    small fixed PG counts keep seven RGW pools well under the per-OSD PG limit with three
    OSDs; msgr2 only, one monitor port per cluster; a modest memory target; log files and
    admin sockets only for the daemons, so concurrent CLI calls do not share them;
    tcp_nodelay on RGW's frontend, without which a 4 KiB GET waits ~40 ms for a delayed ACK
    (measured: 48 ms per GET, 1.5 ms with it). RGW always listens on loopback: only the
    gateway on this host talks to it.
    """
    r = layout.root
    daemon = daemon_files(layout.log, layout.run)
    return f"""# written by pocketcloud from cluster.json on every start; edits here are lost
{global_section(state, state.address, layout.keys, layout.run, r)}osd crush chooseleaf type = 0
osd pool default size = 3
osd pool default min size = 2
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon warn on pool no redundancy = false

[mon]
{daemon}mon data = {r}/mon/$id
mon allow pool delete = true

[mgr]
{daemon}mgr data = {r}/mgr/$id

[osd]
{daemon}{osd_section(r / "osd", state.osd_size)}
[{RGW_NAME}]
{daemon}rgw data = {r}/rgw
rgw frontends = beast endpoint=127.0.0.1:{state.rgw_port} tcp_nodelay=1
rgw thread pool size = 64
"""
