"""Restarting a host engine (dockerd, libvirtd) as scripts/engines.sh runs it: the same
command line, its own session, its log under /var/log/pocketcloud. Only inside the
host-wide lock /tmp/pc-engines.lock, so two suites on one machine never restart at once."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

LOCK = Path("/tmp/pc-engines.lock")
LOGDIR = Path(os.environ.get("POCKETCLOUD_LOGDIR", "/var/log/pocketcloud"))
PIDFILES = {"dockerd": Path("/var/run/docker.pid"), "libvirtd": Path("/var/run/libvirtd.pid")}


@contextmanager
def engines_lock() -> Iterator[None]:
    with open(LOCK, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def engine_pid(name: str) -> int:
    pid = int(PIDFILES[name].read_text().strip())
    assert Path(f"/proc/{pid}/comm").read_text().strip() == name, f"{PIDFILES[name]} names pid {pid}, not {name}"
    return pid


def restart(name: str, up: Callable[[], bool], timeout: float = 120) -> dict:
    """SIGTERM the engine, wait for it to exit, start it again with the same command line;
    return {'old_pid', 'new_pid', 'down_s'} once `up()` answers."""
    pid = engine_pid(name)
    argv = [a for a in Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0") if a]
    cwd = os.readlink(f"/proc/{pid}/cwd")
    env = dict(e.split("=", 1) for e in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0") if "=" in e)
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    deadline = started + timeout
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"{name} (pid {pid}) did not exit within {timeout:.0f}s of SIGTERM"
        time.sleep(0.1)
    LOGDIR.mkdir(parents=True, exist_ok=True)
    with open(LOGDIR / f"{name}.log", "ab") as log:
        subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True)
    while not up():
        assert time.monotonic() < deadline, f"{name} did not come back within {timeout:.0f}s"
        time.sleep(0.2)
    return {"old_pid": pid, "new_pid": engine_pid(name), "down_s": round(time.monotonic() - started, 1)}
