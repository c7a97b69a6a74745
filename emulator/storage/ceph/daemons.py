"""The processes of one cluster: found by their command line, started, stopped, restarted.

A daemon of this cluster is any process whose command line is exactly the one pocketcloud
gives it (`ceph-osd -f -c HOME/storage/ceph/ceph.conf -i 1`): the config path names the
home, so a scan of /proc finds this cluster's daemons after a kill -9 of the server
(they run in their own session and outlive it) and never another cloud's.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from .layout import MGR_ID, MON_ID, RGW_NAME, Layout, tool

log = logging.getLogger("pocketcloud.storage.ceph")

PROGRAMS = {"mon": "ceph-mon", "mgr": "ceph-mgr", "osd": "ceph-osd", "rgw": "radosgw"}
LOG_LIMIT = 64 << 20  # a daemon's log is rotated (one old copy kept) past this size


def argv_for(layout: Layout, name: str) -> list[str]:
    """The command line of daemon `name` (mon.a, mgr.x, osd.N, rgw)."""
    kind, _, ident = name.partition(".")
    conf = ["-f", "-c", str(layout.conf)]
    if kind == "rgw":
        return [tool("radosgw"), *conf, "-n", RGW_NAME]
    return [tool(PROGRAMS[kind]), *conf, "-i", ident]


def names(osd_ids) -> list[str]:
    return [f"mon.{MON_ID}", f"mgr.{MGR_ID}", *(f"osd.{i}" for i in osd_ids), "rgw"]


def _state(pid: int) -> str | None:
    """The process state letter (R, S, D, Z ...), None if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return None


def _cmdline(pid: int) -> list[str] | None:
    """argv of a live process, None if it is gone or a zombie (a dead daemon nobody reaped)."""
    if _state(pid) in (None, "Z", "X"):
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw.decode(errors="replace").split("\0")[:-1] or None


def _same(argv: list[str], expected: list[str]) -> bool:
    return bool(argv) and argv[1:] == expected[1:] and os.path.basename(argv[0]) == os.path.basename(expected[0])


def scan(layout: Layout, daemon_names: list[str]) -> dict[str, int]:
    """name -> pid of this cluster's daemons running now."""
    wanted = {name: argv_for(layout, name) for name in daemon_names}
    conf = str(layout.conf)
    found: dict[str, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        argv = _cmdline(int(entry.name))
        if not argv or conf not in argv:
            continue
        for name, expected in wanted.items():
            if _same(argv, expected):
                found[name] = int(entry.name)
    return found


class Daemon:
    """One daemon: a child this process started, or one adopted from an earlier server."""

    def __init__(self, layout: Layout, name: str):
        self.layout = layout
        self.name = name
        self.argv = argv_for(layout, name)
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.started_at: float | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self.backoff = 1.0
        self.next_try = 0.0

    def adopt(self, pid: int) -> None:
        self.proc, self.pid, self.started_at = None, pid, time.time()

    def running(self) -> bool:
        proc, pid = self.proc, self.pid  # other threads (status reads, the supervisor) call this too
        if pid is None:
            return False
        if proc is None:
            # adopted: once it is gone its pid can be anyone's, so its command line must match
            if _same(_cmdline(pid) or [], self.argv):
                return True
            code = None
        else:
            code = proc.poll()
            # poll() also answers None while another thread is reaping the child; /proc tells. Not by
            # the command line: right after exec it reads empty for a moment (the console's status
            # poll once caught a just-spawned RGW so, and the daemon was forgotten while it ran), and
            # a child's pid is not reused before we reap it.
            if code is None and _state(pid) not in (None, "Z", "X"):
                return True
            if code is None:
                try:
                    code = proc.wait(timeout=2)  # dead: its exit status is being collected
                except subprocess.TimeoutExpired:
                    pass
        self.last_exit = ("exited" if code is None else f"exit {code}" if code >= 0
                          else f"killed by {signal.Signals(-code).name}")
        if self.pid == pid:  # not respawned meanwhile by another thread
            self.proc = self.pid = None
        return False

    def spawn(self) -> None:
        out = open(self.layout.log / f"{self.name}.out", "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, close_fds=True, cwd=self.layout.root)
        finally:
            out.close()
        self.pid, self.started_at = self.proc.pid, time.time()

    def signal(self, sig: int) -> bool:
        if self.pid is None or not self.running():
            return False
        try:
            os.kill(self.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return True
            time.sleep(0.05)
        return not self.running()

    def log_path(self) -> Path:
        return self.layout.log / f"ceph-{RGW_NAME if self.name == 'rgw' else self.name}.log"

    def rotate_log(self, limit: int = LOG_LIMIT) -> bool:
        """What logrotate does for packaged Ceph: past `limit`, keep one old copy and have the
        daemon reopen its log (Ceph daemons do on SIGHUP). True if rotated."""
        path = self.log_path()
        try:
            if path.stat().st_size <= limit:
                return False
        except FileNotFoundError:
            return False
        os.replace(path, path.with_name(path.name + ".1"))
        self.signal(signal.SIGHUP)
        return True

    def describe(self) -> dict:
        up = self.running()
        return {"pid": self.pid if up else None, "state": "running" if up else
                ("held" if self.layout.is_held(self.name) else "down"),
                "restarts": self.restarts, "last_exit": self.last_exit, "log": str(self.log_path())}


def stop_all(daemons: list[Daemon], grace: float) -> None:
    """SIGTERM, then SIGKILL whatever is still there after `grace` seconds."""
    for d in daemons:
        d.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for d in daemons:
        d.wait_gone(max(0.0, deadline - time.monotonic()))
    for d in daemons:
        if d.signal(signal.SIGKILL):
            log.warning("[ceph] %s did not stop within %.0f s: killed", d.name, grace)
            d.wait_gone(5)
