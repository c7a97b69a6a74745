"""What runs on another machine of the cluster, over SSH (hosts.py decides when).

`Ssh` is how that machine is reached (always non-interactive); `Remote` where this cluster's
files are there; the shell scripts are POSIX sh, quoted with shlex, and carry no secret:
keyrings travel inside the tar stream on ssh's stdin (`tar_files`), 0600 there. Every
script that stops or removes something checks first that it is this cluster's (the pid's
command line names this cluster's ceph.conf; the directory holds a marker with the fsid).
"""
from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import tarfile
import time
from dataclasses import asdict, dataclass

from ...errors import BackendUnavailable, InvalidParameter
from .layout import ClusterState, daemon_files, global_section, osd_section

SSH_TARGET = re.compile(r"^(?:[a-z_][a-z0-9_.-]{0,31}@)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
MARKER = ".pocketcloud-ceph"   # in the remote directory: the fsid of the cluster that owns it


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


def probe_script(remote: Remote) -> str:
    d = shlex.quote(remote.root)
    return ("hostname -s; "
            "if command -v ceph-osd >/dev/null 2>&1; then ceph-osd --version; else echo missing; fi; "
            "if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then echo systemd; "
            "else echo plain; fi; "
            f"if [ ! -e {d} ]; then echo new; elif [ -f {d}/{MARKER} ]; then cat {d}/{MARKER}; "
            f"elif [ -z \"$(ls -A {d})\" ]; then echo empty; else echo foreign; fi")


def unpack_script(remote: Remote, osd_ids: list[int]) -> str:
    d = shlex.quote(remote.root)
    stale = " ".join(shlex.quote(remote.osd(i)) for i in osd_ids)
    # ids are reused after a purge: an OSD directory of an earlier member with the same id goes
    return (f"set -e; umask 077; mkdir -p {d}; rm -rf {stale}; "
            f"tar -x -o -C {d} -f -; mkdir -p {d}/run {d}/log {d}/crash {d}/tmp")


def mkfs_script(remote: Remote, osds: list[dict]) -> str:
    conf = shlex.quote(remote.conf)
    # in parallel, as here: the BlueStore files overlap their fsyncs
    jobs = " ".join(f"ceph-osd -c {conf} -i {o['id']} --mkfs --osd-uuid {o['uuid']} "
                    f">{shlex.quote(remote.root)}/log/mkfs.{o['id']}.out 2>&1 & pids=\"$pids $!\";" for o in osds)
    return (f"set -e; pids=''; {jobs} rc=0; for p in $pids; do wait $p || rc=1; done; "
            f"if [ $rc != 0 ]; then tail -n 3 {shlex.quote(remote.root)}/log/mkfs.*.out >&2; fi; exit $rc")


def start_script(state: ClusterState, remote: Remote, osd_id: int) -> str:
    conf, unit = shlex.quote(remote.conf), unit_name(state, osd_id)
    out = shlex.quote(f"{remote.root}/log/osd.{osd_id}.out")
    return (f"{alive_test(remote, osd_id)} && exit 0; "
            "if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then "
            f"systemctl reset-failed {unit}.service 2>/dev/null || true; "
            f"systemd-run --quiet --collect --unit={unit} -p Restart=on-failure -p RestartSec=5 "
            f"\"$(command -v ceph-osd)\" -f -c {conf} -i {osd_id}; "
            f"else ceph-osd -c {conf} -i {osd_id} </dev/null >>{out} 2>&1; fi")


def alive_test(remote: Remote, osd_id: int) -> str:
    """Shell: true if the OSD's pid file names a live ceph-osd of this configuration (not a
    reused pid, not a zombie nobody reaped)."""
    pid_file, conf = shlex.quote(remote.pid_file(osd_id)), shlex.quote(remote.conf)
    return (f"{{ pid=$(cat {pid_file} 2>/dev/null) && [ -n \"$pid\" ] && "
            f"tr '\\0' ' ' </proc/$pid/cmdline 2>/dev/null | grep -qF -- {conf} && "
            f"! grep -q '^State:.*Z' /proc/$pid/status; }}")


def stop_script(state: ClusterState, remote: Remote, osd_id: int) -> str:
    unit = unit_name(state, osd_id)
    return ("if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then "
            f"systemctl stop {unit}.service 2>/dev/null || true; fi; "
            f"if {alive_test(remote, osd_id)}; then kill $pid; i=0; "
            f"while {alive_test(remote, osd_id)} && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; "
            f"if {alive_test(remote, osd_id)}; then kill -9 $pid; fi; fi; true")


def remove_script(state: ClusterState, remote: Remote) -> str:
    d = shlex.quote(remote.root)
    return (f"if [ ! -e {d} ]; then exit 0; fi; "
            f"if [ \"$(cat {d}/{MARKER} 2>/dev/null)\" = {state.fsid} ]; then rm -rf {d}; "
            f"else echo '{remote.root} does not belong to cluster {state.fsid}: left alone' >&2; exit 3; fi")


def tar_files(files: dict[str, str], dirs: list[str]) -> bytes:
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
