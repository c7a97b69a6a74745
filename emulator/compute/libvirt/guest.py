"""Everything between the host and a guest: the seed ISO, the driver's management key,
commands over SSH, and the signs that a guest is ready (its console, its SSH banner)."""
from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from ...errors import EngineError
from ..cloudinit import VOLUME_LABEL
from ..driver import ExecResult
from ..execio import MAX_EXEC_OUTPUT, REMOTE_KILL_TREE, TIMED_OUT_EXIT, Capped
from ..sshkeys import generate_keypair


def write_seed_iso(inst_dir: Path, files: dict[str, str]) -> Path:
    """The NoCloud seed as inst_dir/seed.iso (ISO9660 labelled cidata, as cloud-init looks for)."""
    src = inst_dir / "seed"
    src.mkdir()
    try:
        for name, content in files.items():
            (src / name).write_text(content)
        iso = inst_dir / "seed.iso"
        subprocess.run(
            ["genisoimage", "-quiet", "-output", str(iso), "-volid", VOLUME_LABEL, "-joliet", "-rock",
             *(str(src / name) for name in files)],
            check=True, capture_output=True,
        )
        return iso
    finally:
        shutil.rmtree(src, ignore_errors=True)


class ManagementKey:
    """The driver's own SSH key, added to every VM's seed so exec() can run commands."""

    def __init__(self, base_dir: Path):
        self.path = base_dir / "mgmt" / "id_ed25519"
        self._lock = threading.Lock()

    def public(self) -> str:
        pub = self.path.with_suffix(".pub")
        with self._lock:
            if not pub.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.parent.chmod(0o700)
                private, public = generate_keypair("pocketcloud-management")
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(private)
                pub.write_text(public + "\n")
            return pub.read_text().strip()


def ssh_run(ip: str, user: str, key_path: Path, command: list[str], timeout: int,
            max_output: int = MAX_EXEC_OUTPUT, port: int = 22) -> ExecResult:
    """Run `command` in the guest: output kept up to `max_output` bytes a stream, the command
    and what it started killed in the guest after `timeout` seconds."""
    import paramiko

    key = paramiko.Ed25519Key.from_private_key_file(str(key_path))
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(ip, port, username=user, pkey=key, timeout=10, banner_timeout=20, auth_timeout=20,
                       allow_agent=False, look_for_keys=False)
        transport = client.get_transport()
        chan = transport.open_session(timeout=10)
        # The shell says its pid first, so that a timeout can kill it and its children: closing
        # the channel does not stop a command that writes nothing.
        chan.exec_command("echo $$; " + shlex.join(command))
        out, err = Capped(max_output), Capped(max_output)
        pid_line = bytearray()
        deadline = time.monotonic() + timeout
        timed_out = False
        while True:
            if chan.recv_ready():
                chunk = chan.recv(65536)
                if pid_line is not None:
                    pid_line += chunk
                    if b"\n" not in pid_line and len(pid_line) < 32:
                        continue
                    head, _, chunk = bytes(pid_line).partition(b"\n")
                    pid, pid_line = head.strip(), None
                out.add(chunk)
            if chan.recv_stderr_ready():
                err.add(chan.recv_stderr(65536))
            if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            if time.monotonic() > deadline:
                timed_out = True
                if pid_line is None and pid.isdigit():
                    killer = transport.open_session(timeout=10)
                    killer.exec_command(REMOTE_KILL_TREE + pid.decode())
                    killer.recv_exit_status()
                break
            time.sleep(0.02)
        code = TIMED_OUT_EXIT if timed_out else chan.recv_exit_status()
        return ExecResult(code, out.text(), err.text() + (f"\n[killed after {timeout}s]\n" if timed_out else ""),
                          truncated=out.truncated or err.truncated, timed_out=timed_out)
    except (paramiko.SSHException, OSError) as e:
        raise EngineError(f"exec over SSH to {ip} failed: {e}") from None
    except EOFError:  # paramiko's word for a server that hung up mid-request
        raise EngineError(f"exec over SSH to {ip} failed: the guest's SSH server closed the connection "
                          f"(a command of {len(shlex.join(command))} bytes: the tiny image's dropbear takes "
                          "at most about 9000)") from None
    finally:
        client.close()


def ssh_banner(ip: str | None, timeout: float = 2.0) -> bool:
    """Does an SSH server answer at ip:22 (the guest's sshd is up, not only its kernel)?"""
    if not ip:
        return False
    try:
        with socket.create_connection((ip, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def read_text(path: Path | None, offset: int = 0) -> str:
    """A file's text from `offset` ('' when missing); a file shorter than the offset was
    rotated by virtlogd and is read whole."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if offset > size:
                offset = 0
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def tail_lines(path: Path, lines: int, max_bytes: int = 4 * 1024 * 1024) -> str:
    """The last `lines` lines of a file, read backwards from its end in blocks: a console log
    of any size costs only what is shown (at most `max_bytes` of it)."""
    block = 64 * 1024
    with open(path, "rb") as f:
        end = pos = os.fstat(f.fileno()).st_size
        chunks: list[bytes] = []
        newlines = 0
        while pos > 0 and newlines <= lines and end - pos < max_bytes:
            step = min(block, pos, max_bytes - (end - pos))
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
    kept = b"".join(reversed(chunks)).splitlines()
    if pos > 0 and newlines <= lines:
        kept = kept[1:]  # stopped by max_bytes inside a line: only whole lines are shown
    kept = kept[-max(lines, 1):]
    text = b"\n".join(kept).decode(errors="replace")
    return text + ("\n" if kept else "")


def mark_boot(inst_dir: Path) -> None:
    """Remember where this boot's console output starts (readiness is looked for after it)."""
    log = inst_dir / "console.log"
    (inst_dir / "boot.offset").write_text(str(log.stat().st_size if log.exists() else 0))


def console_since_boot(inst_dir: Path) -> str:
    try:
        offset = int((inst_dir / "boot.offset").read_text())
    except (OSError, ValueError):
        offset = 0
    return read_text(inst_dir / "console.log", offset)


class Readiness:
    """Is a running guest ready: its image's ready marker printed on the console since this
    boot, and its SSH server answering when the image has one. Once seen ready, a domain
    stays ready until it gets a new domain id (a new boot)."""

    def __init__(self):
        self._ready: dict[str, int] = {}  # engine id -> domain id seen ready

    def check(self, engine_id: str, dom_id: int, meta: dict, inst_dir: Path, deep: bool = False) -> bool:
        if self._ready.get(engine_id) == dom_id:
            return True
        marker = meta.get("ready-marker") or ""
        ready = marker in console_since_boot(inst_dir) if marker else True
        # Without a marker the banner is the only sign; with one, only a deep check (a
        # launch waiting for its guest) pays for a connection.
        if ready and meta.get("ssh") == "yes" and (deep or not marker):
            ready = ssh_banner(meta.get("ip"))
        if ready:
            self._ready[engine_id] = dom_id
        return ready

    def forget(self, engine_id: str) -> None:
        self._ready.pop(engine_id, None)
