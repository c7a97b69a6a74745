"""A root filesystem carried between the two kinds, without mounting anything (issue 15: an
image of one's own launched as the other kind).

- ext4 disk -> tree: `e2fsck -fy` on a raw copy (replays the journal, as a mount would), then
  `debugfs rdump` for the contents. rdump skips device nodes and fifos and loses setuid bits
  (it chmods before it chowns), so the tar is written from debugfs's own listing (`ls -p`:
  inode, mode, owner of every entry), the file contents taken from the rdumped tree.
- tree -> ext4 disk: a tar (docker export) extracted with numeric owners (as root: chown and
  mknod need it), then `mke2fs -t ext4 -d`, as the recipes make their disks (images/tiny), with
  the label, UUID and size of the catalogue disk it stands in for, so the kernel command line
  (root=/dev/vda, root=LABEL=..., root=UUID=...) and the rootfs's fstab find it.

The host kernel here has neither nbd nor a loop mount a non-root process may use; e2fsprogs
reads and writes the images as files.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import struct
import subprocess
import tarfile
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from ..errors import EngineError, InvalidParameter

log = logging.getLogger(__name__)

SECTOR = 512
EXT_MAGIC = 0xEF53
SUPERBLOCK = 1024
# Files a container engine makes in every container, never part of a VM's root: /.dockerenv
# would even tell an init it runs in a container (images/debian-12's /sbin/init checks it).
CONTAINER_ONLY = {".dockerenv"}
_LS = re.compile(r"^/(\d+)/(\d+)/(\d+)/(\d+)/(.*)/(\d*)/$")
_DEV = re.compile(r"Device major/minor number: (\d+):(\d+)")


def _refuse(why: str) -> InvalidParameter:
    return InvalidParameter(why, code="InvalidParameterCombination")


def run(cmd: list[str], *, ok: tuple[int, ...] = (0,), what: str = "") -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if proc.returncode not in ok:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EngineError(f"{what or cmd[0]} failed (exit {proc.returncode}): {' / '.join(tail)}")
    return proc.stdout


# -- where the file system is ------------------------------------------------------------------
@dataclass(frozen=True)
class Ext4:
    offset: int  # bytes into the raw disk
    size: int  # bytes the file system spans
    label: str
    uuid: str


def _superblock(head: bytes, offset: int) -> Ext4 | None:
    sb = head[offset + SUPERBLOCK: offset + SUPERBLOCK + 1024]
    if len(sb) < 1024 or struct.unpack_from("<H", sb, 0x38)[0] != EXT_MAGIC:
        return None
    blocks_lo, log_block = struct.unpack_from("<I", sb, 0x4)[0], struct.unpack_from("<I", sb, 0x18)[0]
    blocks_hi = struct.unpack_from("<I", sb, 0x150)[0] if struct.unpack_from("<I", sb, 0x60)[0] & 0x80 else 0
    label = sb[0x78:0x88].split(b"\0", 1)[0].decode("utf-8", "replace")
    return Ext4(offset, ((blocks_hi << 32) | blocks_lo) * (1024 << log_block), label, str(uuidlib.UUID(bytes=sb[0x68:0x78])))


def _partition_starts(f: BinaryIO) -> list[int]:
    """Byte offsets of the partitions of an MBR or GPT table (empty: none)."""
    f.seek(0)
    mbr = f.read(SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        return []
    entries = [mbr[446 + 16 * i: 462 + 16 * i] for i in range(4)]
    if any(e[4] == 0xEE for e in entries):  # protective MBR: the table is the GPT at LBA 1
        f.seek(SECTOR)
        hdr = f.read(92)
        if hdr[:8] != b"EFI PART":
            return []
        table, count, size = struct.unpack_from("<QII", hdr, 72)
        f.seek(table * SECTOR)
        raw = f.read(min(count, 128) * size)
        starts = []
        for i in range(min(count, 128)):
            e = raw[i * size:(i + 1) * size]
            if len(e) >= 40 and any(e[:16]):
                starts.append(struct.unpack_from("<Q", e, 32)[0] * SECTOR)
        return starts
    return [struct.unpack_from("<I", e, 8)[0] * SECTOR for e in entries if e[4] and struct.unpack_from("<I", e, 8)[0]]


def find_ext4(raw: Path) -> Ext4:
    """The ext2/3/4 file system on a raw disk: the whole disk, or its first such partition."""
    with open(raw, "rb") as f:
        head = f.read(SUPERBLOCK + 1024)
        found = _superblock(head, 0)
        if found:
            return found
        for start in _partition_starts(f):
            f.seek(start)
            found = _superblock(f.read(SUPERBLOCK + 1024), 0)
            if found:
                return Ext4(start, found.size, found.label, found.uuid)
    raise _refuse("the disk holds no ext2/3/4 file system (on the whole disk or a partition): "
                  "its files cannot be read without mounting it")


def disk_layout(qcow2: Path, scratch: Path) -> Ext4:
    """Label, UUID and size of the file system on a catalogue VM disk, from its first 64 KiB."""
    head = scratch / "head.raw"
    run(["qemu-img", "dd", "-f", "qcow2", "-O", "raw", "bs=65536", "count=1", f"if={qcow2}", f"of={head}"],
        what="reading the catalogue disk")
    try:
        found = _superblock(head.read_bytes(), 0)
    finally:
        head.unlink(missing_ok=True)
    if found is None:
        raise _refuse(f"the image's VM disk {qcow2.name} is not one ext4 file system on the whole disk: "
                      "a disk of that layout is not made from a container's files")
    return found


# -- ext4 -> tar --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    path: str  # relative, no leading slash
    inode: int
    mode: int
    uid: int
    gid: int


def _debugfs(device: str, commands: list[str]) -> str:
    script = "\n".join(commands) + "\n"
    proc = subprocess.run(["debugfs", "-f", "-", device], input=script, capture_output=True, text=True,
                          errors="surrogateescape")
    if proc.returncode != 0:
        raise EngineError(f"debugfs failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    return proc.stdout


def list_tree(device: str) -> tuple[list[Entry], int]:
    """Every entry of the file system (one debugfs run per directory depth), and how many
    names could not be listed (a '"' in a name: debugfs cannot be told it; a name with a
    newline breaks its listing's line and is not seen at all)."""
    entries: list[Entry] = []
    skipped = 0
    level = [""]
    while level:
        out = _debugfs(device, [f'ls -p "/{d}"' for d in level])
        blocks = re.split(r'^debugfs: ls -p "/(.*)"$', out, flags=re.M)
        following = []
        for parent, body in zip(blocks[1::2], blocks[2::2]):
            for line in body.splitlines():
                m = _LS.match(line)
                if not m or m.group(5) in (".", ".."):
                    continue
                name = m.group(5)
                path = f"{parent}/{name}" if parent else name
                if '"' in name:
                    skipped += 1
                    continue
                e = Entry(path, int(m.group(1)), int(m.group(2), 8), int(m.group(3)), int(m.group(4)))
                entries.append(e)
                if stat.S_ISDIR(e.mode):
                    following.append(path)
        level = following
    return entries, skipped


def _device_numbers(device: str, entries: list[Entry]) -> dict[str, tuple[int, int]]:
    nodes = [e.path for e in entries if stat.S_ISCHR(e.mode) or stat.S_ISBLK(e.mode)]
    if not nodes:
        return {}
    out = _debugfs(device, [f'stat "/{p}"' for p in nodes])
    found = [tuple(map(int, m.groups())) for m in _DEV.finditer(out)]
    return dict(zip(nodes, found)) if len(found) == len(nodes) else {}


def ext4_to_tar(raw: Path, dest: BinaryIO, scratch: Path, *, skip: Callable[[str], bool] = lambda p: False) -> int:
    """The file system on RAW (a raw disk image, changed: its journal replayed) as a tar
    stream; returns the entries written. SCRATCH: an empty directory for rdump's tree."""
    fs = find_ext4(raw)
    device = f"{raw}?offset={fs.offset}" if fs.offset else str(raw)
    # 0: clean, 1: errors fixed, 2: fixed (a mounted root would reboot); more: not usable
    run(["e2fsck", "-fy", device], ok=(0, 1, 2), what="e2fsck of the disk")
    tree = scratch / "tree"
    tree.mkdir()
    _debugfs(device, [f'rdump "/" "{tree}"'])
    entries, skipped = list_tree(device)
    if skipped:
        log.warning("%s: %d names with a double quote were left out", raw.name, skipped)
    devices = _device_numbers(device, entries)
    seen: dict[int, str] = {}
    written = 0
    with tarfile.open(fileobj=dest, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            if skip(e.path) or e.path == "lost+found":
                continue
            local = tree / e.path
            info = tarfile.TarInfo(e.path)
            info.mode, info.uid, info.gid = stat.S_IMODE(e.mode), e.uid, e.gid
            try:
                info.mtime = int(local.lstat().st_mtime)
            except OSError:
                info.mtime = 0
            body = None
            if stat.S_ISREG(e.mode) and e.inode in seen:
                info.type, info.linkname = tarfile.LNKTYPE, seen[e.inode]
            elif stat.S_ISREG(e.mode):
                try:
                    body = open(local, "rb")
                except OSError:  # under a name left out of the listing's reach
                    continue
                seen[e.inode] = e.path
                info.size = os.fstat(body.fileno()).st_size
            elif stat.S_ISDIR(e.mode):
                info.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(e.mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(local)
            elif stat.S_ISFIFO(e.mode):
                info.type = tarfile.FIFOTYPE
            elif (stat.S_ISCHR(e.mode) or stat.S_ISBLK(e.mode)) and e.path in devices:
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(e.mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = devices[e.path]
            else:  # a socket (or a node debugfs gave no numbers for): nothing a rootfs carries
                continue
            try:
                tar.addfile(info, body)
            finally:
                if body is not None:
                    body.close()
            written += 1
    shutil.rmtree(tree, ignore_errors=True)
    return written


# -- tar -> ext4 --------------------------------------------------------------------------------
def _keep_mode(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's 'tar' filter (nothing outside DEST, through a link either), with the mode
    kept whole: a rootfs has setuid programs (su, passwd)."""
    if os.path.normpath(member.name).lstrip("/") in CONTAINER_ONLY:
        return None
    if member.islnk():  # tarfile joins a hard link's target to DEST as is: /etc/passwd stays the host's
        target = os.path.realpath(os.path.join(dest, member.linkname.lstrip("/")))
        if os.path.isabs(member.linkname) or os.path.commonpath([target, os.path.realpath(dest)]) != os.path.realpath(dest):
            raise tarfile.LinkOutsideDestinationError(member, target)
    checked = tarfile.tar_filter(member, dest)
    return checked.replace(mode=member.mode, deep=False) if checked is not None else None


def tar_to_tree(stream: BinaryIO, dest: Path) -> None:
    """Extract a rootfs tar (a stream) with its numeric owners, modes and device nodes."""
    if os.geteuid() != 0:
        raise _refuse("a VM disk is made from a container's files only by a server running as root "
                      "(their owners and device nodes are kept with chown and mknod)")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            tar.extractall(dest, numeric_owner=True, filter=_keep_mode)
    except tarfile.TarError as e:  # a name or a link reaching outside the tree, a cut stream
        raise _refuse(f"its files are not a plain tree: {e}") from None


def tree_bytes(tree: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(tree):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512 + 256  # + an inode's share
            except OSError:
                pass
    return total


def tree_to_qcow2(tree: Path, layout: Ext4, raw: Path, qcow2: Path) -> int:
    """An ext4 disk of TREE laid out as LAYOUT (label, UUID, at least its size), as qcow2;
    returns its virtual size."""
    need = int(tree_bytes(tree) * 1.25) + 64 * 2 ** 20
    size = max(layout.size, -(-need // 2 ** 20) * 2 ** 20)
    with open(raw, "wb") as f:
        f.truncate(size)
    cmd = ["mke2fs", "-q", "-t", "ext4", "-E", "root_owner=0:0", "-d", str(tree)]
    if layout.label:
        cmd += ["-L", layout.label]
    if layout.uuid and layout.uuid != str(uuidlib.UUID(int=0)):
        cmd += ["-U", layout.uuid]
    run(cmd + [str(raw)], what="mke2fs -d")
    run(["qemu-img", "convert", "-q", "-O", "qcow2", str(raw), str(qcow2)], what="qemu-img convert")
    raw.unlink(missing_ok=True)
    return size
