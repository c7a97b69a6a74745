"""What every exec path shares: output kept up to a cap while the rest is drained and
counted (never held), and a process tree killed from the host when its time is up."""
from __future__ import annotations

import os
import signal
from pathlib import Path

MAX_EXEC_OUTPUT = 1024 * 1024  # per stream, unless the Config says otherwise
TIMED_OUT_EXIT = 124  # what coreutils' timeout answers for a command it had to stop


class Capped:
    """One output stream: the first `cap` bytes kept, the rest only counted."""

    def __init__(self, cap: int):
        self.cap = cap
        self.data = bytearray()
        self.dropped = 0

    def add(self, chunk: bytes | None) -> None:
        if not chunk:
            return
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def text(self) -> str:
        return bytes(self.data).decode(errors="replace")


def descendants(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """pid's children, grandchildren ... (deepest last), from /proc/PID/task/*/children."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for children in (proc / str(p) / "task").glob("*/children"):
            try:
                kids = [int(k) for k in children.read_text().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL a process and everything it started. Stopped first, so that none of them can
    start another one between the listing and the kill."""
    if pid <= 1:
        return
    tree = [pid]
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return
    seen: set[int] = set()
    while True:  # children forked before the stop reached their parent are stopped next round
        new = [p for p in descendants(pid) if p not in seen]
        if not new:
            break
        for p in new:
            seen.add(p)
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        tree += new
    for p in tree:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


# The same for a guest, as a shell function run over a second SSH channel (busybox ash and
# dash both have functions and /proc/PID/task/*/children in Debian's kernels).
REMOTE_KILL_TREE = (
    'kt() { kill -STOP "$1" 2>/dev/null; for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do kt "$c"; done; '
    'kill -KILL "$1" 2>/dev/null; }; kt '
)
