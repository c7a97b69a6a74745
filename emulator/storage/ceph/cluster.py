"""One home's Ceph cluster (one mon, one mgr, three OSDs, one RGW): start, adopt, supervise, stop.

The first start bootstraps it (bootstrap.py); every later start finds cluster.json, adopts
the daemons still running from an earlier server (a kill -9 leaves them up) and starts the
others. Readiness is RGW answering S3 with pocketcloud's user — never HEALTH_OK, which a
nearly full disk alone turns into a warning. A dead daemon is restarted with a growing
pause (1 s doubling to 60 s, reset after a minute up), unless an operator or a lab holds it
down (a file HOME/storage/ceph/hold/NAME).
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from ...errors import BackendUnavailable, InvalidParameter, NotFound
from ..client import BackendClient
from . import status as st
from .daemons import Daemon, names, scan, stop_all
from .layout import OSD_COUNT, Layout, missing_packages, render_conf, tool, write_private

log = logging.getLogger("pocketcloud.storage.ceph")
Progress = Callable[[str], None]
STATUS_TTL = 2.0


def _log_progress(line: str) -> None:
    log.warning("%s", line)


class CephCluster:
    def __init__(self, root: Path, *, osd_size: int = 4 << 30, timeout: float = 240.0,
                 progress: Progress = _log_progress, address: str = "127.0.0.1"):
        self.layout = Layout(root)
        self.osd_size = osd_size
        self.address = address  # for a bootstrap; an existing cluster keeps the one it was made with
        self.timeout = timeout
        self.progress = progress
        self.last_progress = ""
        self.daemons: dict[str, Daemon] = {}
        self._lock = threading.RLock()
        self._daemons_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._status_cache: tuple[float, dict] | None = None
        self._zone_pool: str | None = None
        self._t0 = time.monotonic()
        self.cancelled = threading.Event()
        self._logs_checked = 0.0

    # -- small helpers ---------------------------------------------------------------------
    def say(self, line: str, *, timed: bool = False) -> None:
        if timed:
            line = f"{line} ({time.monotonic() - self._t0:.1f} s)"
        self.last_progress = line
        self.progress(f"[ceph] {line}")

    def run(self, argv: list[str], *, timeout: float = 60, what: str = "") -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                                  cwd=self.layout.root)
        except subprocess.TimeoutExpired:
            raise BackendUnavailable(f"Ceph: {what or argv[0]} did not answer within {timeout:.0f} s") from None
        except FileNotFoundError:
            raise BackendUnavailable(f"Ceph: {argv[0]} is not installed ({', '.join(missing_packages())} missing)") \
                from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise BackendUnavailable(f"Ceph: {what or os.path.basename(argv[0])} failed ({proc.returncode}): "
                                     f"{' / '.join(tail)}")
        return proc.stdout

    def ceph(self, *args: str, timeout: float = 20, fmt: str | None = "json") -> object:
        """Run the `ceph` CLI as client.admin against this cluster; parsed JSON by default."""
        argv = [tool("ceph"), "-c", str(self.layout.conf), "--connect-timeout", str(int(min(timeout, 15))), *args]
        if fmt:
            argv += ["-f", fmt]
        out = self.run(argv, timeout=timeout, what=f"ceph {' '.join(args[:3])}")
        return json.loads(out) if fmt == "json" else out

    def rgw_admin(self, *args: str, timeout: float = 30) -> dict:
        out = self.run([tool("radosgw-admin"), "-c", str(self.layout.conf), "-n", "client.admin", *args],
                       timeout=timeout, what=f"radosgw-admin {' '.join(args[:2])}")
        return json.loads(out) if out.strip() else {}

    @property
    def state(self):
        return self.layout.read_state()

    def exists(self) -> bool:
        s = self.state
        return bool(s and s.bootstrapped)

    def version(self) -> str:
        out = self.run([tool("ceph"), "--version"], timeout=10, what="ceph --version")
        m = re.search(r"ceph version (\S+)", out)
        return m.group(1) if m else out.strip()

    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.state.rgw_port}"

    def credentials(self) -> tuple[str, str]:
        data = json.loads(self.layout.rgw_user_file.read_text())
        return data["access_key"], data["secret_key"]

    def _names(self) -> list[str]:
        s = self.state
        return names([o["id"] for o in s.osds] if s else range(OSD_COUNT))

    def _daemon(self, name: str) -> Daemon:
        # status reads (other threads) create entries too: one Daemon per name, or a spawned one is lost
        with self._daemons_lock:
            if name not in self.daemons:
                self.daemons[name] = Daemon(self.layout, name)
            return self.daemons[name]

    def attach(self) -> "CephCluster":
        """Know the daemons of a cluster another process manages (for placement, labs)."""
        if not self.exists():
            raise NotFound(f"no Ceph cluster in {self.layout.root}")
        for name, pid in scan(self.layout, self._names()).items():
            self._daemon(name).adopt(pid)
        return self

    # -- lifecycle ---------------------------------------------------------------------------
    def _take_lock(self) -> None:
        self.layout.make_dirs()
        fd = os.open(self.layout.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BackendUnavailable(f"another pocketcloud server manages the Ceph cluster in {self.layout.root}") \
                from None
        os.truncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def start(self) -> "CephCluster":
        """Bootstrap or start the cluster; returns once RGW serves S3 (or raises)."""
        missing = missing_packages()
        if missing:
            raise BackendUnavailable(f"Ceph needs the Debian packages {' '.join(missing)}: run scripts/engines.sh "
                                     f"as root, or apt-get install {' '.join(missing)}")
        with self._lock:
            self._t0 = time.monotonic()
            self.cancelled.clear()
            if self._lock_fd is None:
                self._take_lock()
            from .bootstrap import create, wipe_unfinished

            state = self.state
            if state is None or not state.bootstrapped:
                if state is not None:
                    self.say(f"an unfinished bootstrap in {self.layout.root}: starting over")
                    wipe_unfinished(self)
                create(self)
            else:
                self._start_existing()
        return self

    def _start_existing(self) -> None:
        s = self.state
        if self.address not in (s.address, "127.0.0.1"):
            self.say(f"this cluster was made with the address {s.address} and keeps it (its monitor map names it); "
                     f"the address {self.address} applies to a new cluster only")
        self.layout.conf.write_text(render_conf(self.layout, s))
        self.layout.secure_keys()
        found = scan(self.layout, self._names())
        for name, pid in found.items():
            self._daemon(name).adopt(pid)
        todo = [n for n in self._names() if n not in found and not self.layout.is_held(n)]
        self.say(f"found cluster {s.fsid} in {self.layout.root}: {len(found)} daemons running (adopted), "
                 f"starting {', '.join(todo) or 'none'}")
        mon = self._daemon("mon.a")
        if "mon.a" in todo:
            mon.spawn()
        self.wait_mon()
        for name in todo:
            if name != "mon.a":
                self._daemon(name).spawn()
        self.wait_rgw()

    def deadline_left(self, step: str) -> float:
        if self.cancelled.is_set():
            raise BackendUnavailable(f"Ceph start cancelled (the server is stopping) at: {step}")
        left = self.timeout - (time.monotonic() - self._t0)
        if left <= 0:
            raise BackendUnavailable(f"Ceph did not come up within {self.timeout:.0f} s (at: {step}); "
                                     f"see the logs in {self.layout.log}")
        return left

    def wait_mon(self) -> None:
        last = ""
        while True:
            self.deadline_left(f"waiting for the monitor: {last}")
            mon = self._daemon("mon.a")
            if not mon.running():
                raise BackendUnavailable(f"Ceph: the monitor exited ({mon.last_exit}); see "
                                         f"{self.layout.log}/ceph-mon.a.log")
            try:
                self.ceph("mon", "stat", timeout=10)
                self.say("mon up", timed=True)
                return
            except BackendUnavailable as exc:
                last = str(exc)
                time.sleep(0.2)

    def wait_rgw(self) -> None:
        key, secret = self.credentials()
        client = BackendClient(self.endpoint(), key, secret, timeout=10)
        last = ""
        try:
            while True:
                self.deadline_left(f"waiting for RGW to answer S3: {last}")
                try:
                    code = client.simple("GET")[0]
                    if code == 200:
                        self.say(f"S3 (RGW) answering on {self.endpoint()}", timed=True)
                        return
                    last = f"HTTP {code}"
                except BackendUnavailable as exc:
                    last = str(exc)
                time.sleep(0.25)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop this cluster's daemons (RGW first, the monitor last), and nothing else."""
        self.cancelled.set()  # a start in progress gives up at its next step
        with self._lock:
            for name, pid in scan(self.layout, self._names()).items():
                d = self._daemon(name)
                if not d.running():
                    d.adopt(pid)
            with self._daemons_lock:
                known = dict(self.daemons)
            order = [[d for n, d in known.items() if n == "rgw"],
                     [d for n, d in known.items() if n.startswith(("osd.", "mgr."))],
                     [d for n, d in known.items() if n.startswith("mon.")]]
            for group in order:
                stop_all(group, grace=4)
            self._status_cache = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def supervise_once(self) -> list[str]:
        """Restart each dead daemon whose pause is over (the names restarted); rotate big logs."""
        restarted = []
        with self._lock:
            now = time.monotonic()
            check_logs = now - self._logs_checked > 60
            if check_logs:
                self._logs_checked = now
            for name in self._names():
                d = self._daemon(name)
                if d.running():
                    if d.started_at and time.time() - d.started_at > 60:
                        d.backoff = 1.0
                    if check_logs and d.rotate_log():
                        log.info("[ceph] rotated the log of %s", name)
                    continue
                if self.layout.is_held(name) or now < d.next_try:
                    continue
                d.restarts += 1
                log.error("[ceph] %s is down (%s): restarting it (restart %d; next pause %.0f s)",
                          name, d.last_exit or "not running", d.restarts, d.backoff)
                try:
                    d.spawn()
                    restarted.append(name)
                except OSError as exc:
                    log.error("[ceph] restarting %s failed: %s", name, exc)
                d.next_try = now + d.backoff
                d.backoff = min(d.backoff * 2, 60.0)
                self._status_cache = None
        return restarted

    def healthy_processes(self) -> bool:
        """The monitor and RGW run (what S3 needs at the very least)."""
        return all(self._daemon(n).running() for n in ("mon.a", "rgw"))

    # -- operator and lab controls ---------------------------------------------------------------
    def _known(self, name: str) -> str:
        if name not in self._names():
            raise InvalidParameter(f"no daemon {name!r} in this cluster (one of {', '.join(self._names())})")
        return name

    def hold(self, name: str) -> None:
        """Keep `name` down: the supervisor leaves it alone until release()."""
        (self.layout.hold / self._known(name)).touch()

    def release(self, name: str) -> None:
        try:
            (self.layout.hold / self._known(name)).unlink()
        except FileNotFoundError:
            pass
        self._daemon(name).next_try = 0.0

    def start_daemon(self, name: str) -> bool:
        """Start `name` now if it is not running (where no supervisor does it); True if started."""
        with self._lock:
            if scan(self.layout, [self._known(name)]):
                return False
            self._daemon(name).spawn()
            self._status_cache = None
            return True

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Send `sig` to daemon `name` (found anew in /proc); its pid, None if it was not running."""
        pid = scan(self.layout, [self._known(name)]).get(name)
        if pid is None:
            return None
        os.kill(pid, sig)
        self._status_cache = None
        return pid

    # -- what the cluster says ---------------------------------------------------------------------
    def status(self, fresh: bool = False) -> dict:
        """Health, OSDs and PGs (cached for STATUS_TTL seconds unless fresh)."""
        cached = self._status_cache
        if not fresh and cached and time.monotonic() - cached[0] < STATUS_TTL:
            return cached[1]
        raw = self.ceph("status", timeout=10)
        osdmap = raw.get("osdmap", {})
        osdmap = osdmap.get("osdmap", osdmap)
        tree = self.ceph("osd", "tree", timeout=10) if osdmap.get("num_up_osds") != osdmap.get("num_osds") else None
        summary = st.summarize(raw, tree)
        self._status_cache = (time.monotonic(), summary)
        return summary

    def describe(self, live: bool = True) -> dict:
        """Identity, daemons and (live) the cluster's own view: health, OSDs, PGs."""
        s = self.state
        info: dict = {"data_dir": str(self.layout.root), "progress": self.last_progress}
        if s:
            info.update(fsid=s.fsid, mon=f"{s.address}:{s.mon_port}", version=s.version)
        info["daemons"] = {n: self._daemon(n).describe() for n in self._names()}
        if not live:
            info.update(health="UNKNOWN", health_reason=self.last_progress or "not started", serving="starting")
            return info
        try:
            info.update(self.status())
        except BackendUnavailable as exc:
            info.update(health="UNKNOWN", health_reason=str(exc), serving="unavailable")
        return info

    def data_pool(self) -> str:
        if self._zone_pool is None:
            zone = self.rgw_admin("zone", "get")
            for p in zone.get("placement_pools", []):
                if p.get("key") == "default-placement":
                    self._zone_pool = p["val"]["storage_classes"]["STANDARD"]["data_pool"]
            if self._zone_pool is None:
                raise BackendUnavailable("Ceph: RGW's zone has no default-placement data pool")
        return self._zone_pool

    def bucket_view(self, bucket: str) -> dict:
        """A bucket as RGW keeps it: its marker (the prefix of its RADOS objects), the data pool,
        and how many RADOS objects and bytes it holds."""
        try:
            stats = self.rgw_admin("bucket", "stats", f"--bucket={bucket}")
        except BackendUnavailable as exc:
            raise NotFound(f"no bucket {bucket!r} in the Ceph engine ({exc})", code="NoSuchBucket") from None
        main = (stats.get("usage") or {}).get("rgw.main") or {}
        return {"bucket_marker": stats.get("marker"), "pool": self.data_pool(),
                "rados_objects": main.get("num_objects", 0), "bytes": main.get("size_actual", main.get("size", 0))}

    def placement(self, bucket: str, key: str, marker: str | None = None) -> dict:
        """Where an S3 object's head really lives: `ceph osd map` for its RADOS object, plus
        whether it exists and its size (rados stat), and the host files of the acting OSDs.
        `marker`: the bucket's, when the caller has just read it (bucket_view)."""
        if marker is None:
            marker = self.bucket_view(bucket)["bucket_marker"]
        pool = self.data_pool()
        oid = st.head_oid(marker, key)
        osd_map = self.ceph("osd", "map", pool, oid, timeout=10)
        try:
            out = self.run([tool("rados"), "-c", str(self.layout.conf), "-p", pool, "stat", oid], timeout=15)
            m = re.search(r"size (\d+)", out)
            stat = {"size": int(m.group(1))} if m else {}
        except BackendUnavailable:
            stat = None
        state = self.state
        paths = {o["id"]: str(self.layout.osd_data(o["id"]) / "block") for o in state.osds}
        for h in state.hosts:  # OSDs on added machines: the path is on that machine
            paths.update({o["id"]: f"{h['data_dir']}/osd/{o['id']}/block" for o in h["osds"]})
        hosts_of = st.osd_hosts(self.ceph("osd", "tree", timeout=10))
        result = st.placement(pool, oid, osd_map, paths, stat, hosts_of)
        result.update(bucket=bucket, key=key, bucket_marker=marker)
        return result


def write_user(layout: Layout, user: dict) -> None:
    keys = (user.get("keys") or [{}])[0]
    if not keys.get("access_key") or not keys.get("secret_key"):
        raise BackendUnavailable("Ceph: radosgw-admin created the S3 user without keys")
    write_private(layout.rgw_user_file, json.dumps({"uid": user.get("user_id"), "access_key": keys["access_key"],
                                                    "secret_key": keys["secret_key"]}))
