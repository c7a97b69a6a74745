#!/usr/bin/env python3
"""Longest silence: the longest stretch without any output while a student waits.

Runs the CLI commands a student starts and that take long, once on a terminal (a pty: the
spinner redraws) and once piped (plain lines: what a log or CI sees), stamping every chunk
of output; the figure is the longest gap between two chunks (start and exit included).
The target is 2 s. Measured: `instances run tiny --kind vm --wait` against a fresh server,
and `images build debian-12` from an empty cache of its own (a full debootstrap, ~4 min;
`--skip-build` leaves it out). The raw column is the same work without pocketcloud's
progress where that exists: build.sh run directly, piped (`--raw-build`, another ~4 min).

    .venv/bin/python bench/silence.py [--skip-build] [--raw-build] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.cloud import PC, Server  # noqa: E402


def gaps(cmd: list[str], env: dict, tty: bool, timeout: float = 1800) -> tuple[float, float, int]:
    """(longest gap in seconds, total seconds, exit code) of CMD's output."""
    started = last = time.monotonic()
    longest = 0.0
    if tty:
        master, slave = pty.openpty()
        proc = subprocess.Popen(cmd, env={**env, "COLUMNS": "120", "TERM": "xterm"}, stdin=slave, stdout=slave,
                                stderr=slave, close_fds=True)
        os.close(slave)
        fds = [master]
    else:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        fds = [proc.stdout.fileno()]
    while fds:
        ready, _, _ = select.select(fds, [], [], 0.05)
        now = time.monotonic()
        if now - started > timeout:
            proc.kill()
            break
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the pty's other side closed
                chunk = b""
            if not chunk:
                fds.remove(fd)
                continue
            longest, last = max(longest, now - last), now
    rc = proc.wait()
    end = time.monotonic()
    return max(longest, end - last), end - started, rc


def row(metric: str, ours: float, raw: float | None, note: str) -> dict:
    return {"metric": metric, "pocketcloud": round(ours, 2), "raw": None if raw is None else round(raw, 2),
            "ratio": None if not raw else round(ours / raw, 2), "unit": "s", "note": note}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-build", action="store_true", help="leave out the debian-12 build (~4 min each)")
    ap.add_argument("--raw-build", action="store_true", help="also run build.sh directly, piped")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="pc-silence-"))
    srv = Server(scratch / "home", scratch)
    rows = []
    try:
        srv.cli("images", "build", "tiny")
        srv.start()
        api = srv.admin
        env = {**srv.env, "POCKETCLOUD_ENDPOINT": srv.url, "AWS_ACCESS_KEY_ID": api.key_id,
               "AWS_SECRET_ACCESS_KEY": api.secret}
        for tty in (True, False):
            name = f"vm-{'tty' if tty else 'piped'}"
            longest, total, rc = gaps([PC, "instances", "run", "tiny", "--kind", "vm", "--name", name, "--wait"],
                                      env, tty)
            assert rc == 0, f"the launch failed (exit {rc})"
            rows.append(row(f"VM launch --wait, {'terminal' if tty else 'piped'}: longest silence", longest, None,
                            f"of {total:.1f}s in all"))
            subprocess.run([PC, "instances", "rm", name], env=env, capture_output=True)
        if not args.skip_build:
            cache_env = {**env, "POCKETCLOUD_CACHE": str(scratch / "cache")}
            for tty in (True, False):
                shutil.rmtree(scratch / "cache", ignore_errors=True)
                longest, total, rc = gaps([PC, "images", "build", "debian-12"], cache_env, tty)
                assert rc == 0, f"the build failed (exit {rc})"
                raw = None
                if args.raw_build and not tty:
                    out = scratch / "raw-out"
                    out.mkdir(exist_ok=True)
                    raw, _, _ = gaps(["bash", str(REPO / "images/debian-12/build.sh"), str(out)],
                                     {**os.environ, "POCKETCLOUD_CACHE": str(scratch / "raw-cache")}, False)
                rows.append(row(f"debian-12 build, {'terminal' if tty else 'piped'}: longest silence", longest, raw,
                                f"of {total:.0f}s in all, empty cache" + ("; raw: build.sh alone" if raw else "")))
    finally:
        for iid in srv.admin.ok("GET", "/instances")["instances"] if srv.proc else []:
            srv.admin("DELETE", f"/instances/{iid['id']}")
        srv.stop()
        subprocess.run(["virsh", "-c", "qemu:///system", "net-destroy", srv.vm_network], capture_output=True)
        subprocess.run(["virsh", "-c", "qemu:///system", "net-undefine", srv.vm_network], capture_output=True)
        # pocketcloud/debian-12:HASH stays in dockerd: it is the same image every cloud on this host uses.
        shutil.rmtree(scratch, ignore_errors=True)
    width = max(len(r["metric"]) for r in rows)
    print(f"{'metric'.ljust(width)}  pocketcloud  raw     note")
    for r in rows:
        raw = "-" if r["raw"] is None else f"{r['raw']:.2f}"
        print(f"{r['metric'].ljust(width)}  {r['pocketcloud']:>9.2f}s  {raw:>6}  {r['note']}")
    if args.json:
        args.json.write_text(json.dumps({"bench": "silence", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
