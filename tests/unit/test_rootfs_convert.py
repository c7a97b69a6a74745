"""The conversion helpers of an image of one's own launched as the other kind
(emulator/volumes/rootfs.py) on a small synthetic tree, with the real e2fsprogs and qemu-img:
owners, setuid, symlinks, hard links, a fifo and a device node survive tar -> ext4 disk ->
tar; a partitioned disk is read at its partition; what is not ext4, or a tar reaching outside
its tree, is refused."""
from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
import uuid

import pytest

from emulator.errors import InvalidParameter
from emulator.volumes import rootfs

UUID = str(uuid.uuid4())


def synthetic_tar() -> io.BytesIO:
    """A rootfs-like tar as docker export gives one (with a .dockerenv)."""
    buf = io.BytesIO()

    def add(name, kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, data=b"", **kw):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, 1_700_000_000
        for k, v in kw.items():
            setattr(info, k, v)
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("etc", "usr", "usr/bin", "home", "home/u", "dev", "run"):
            add(d, tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add(".dockerenv")
        add("etc/shadow", mode=0o640, gid=42, data=b"root:*:1::::::\n")
        add("usr/bin/su", mode=0o4755, data=b"\x7fELF pretend")
        add("usr/bin/su2", tarfile.LNKTYPE, mode=0o4755, linkname="usr/bin/su")
        add("bin", tarfile.SYMTYPE, 0o777, linkname="usr/bin")
        add("home/u/note", mode=0o600, uid=1000, gid=1000, data=b"written in the container\n")
        add("run/fifo", tarfile.FIFOTYPE)
        add("etc/dev-disk-by\\x2dlabel.mount", data=b"[Mount]\n")  # systemd escapes names so
        add("dev/null", tarfile.CHRTYPE, 0o666, devmajor=1, devminor=3)
    buf.seek(0)
    return buf


def members(tar_bytes: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_a_tree_goes_to_an_ext4_disk_and_back_with_what_a_rootfs_needs(tmp_path):
    tree = tmp_path / "tree"
    rootfs.tar_to_tree(synthetic_tar(), tree)
    assert not (tree / ".dockerenv").exists(), "a container engine's marker is no part of a VM's root"
    st = (tree / "usr/bin/su").stat()
    assert stat.S_IMODE(st.st_mode) == 0o4755 and st.st_ino == (tree / "usr/bin/su2").stat().st_ino
    assert (tree / "home/u/note").stat().st_uid == 1000 and stat.S_ISFIFO((tree / "run/fifo").lstat().st_mode)
    assert os.major((tree / "dev/null").lstat().st_rdev) == 1

    layout = rootfs.Ext4(0, 128 << 20, "tiny-root", UUID)
    size = rootfs.tree_to_qcow2(tree, layout, tmp_path / "disk.raw", tmp_path / "disk.qcow2")
    assert size == 128 << 20 and not (tmp_path / "disk.raw").exists()
    assert rootfs.disk_layout(tmp_path / "disk.qcow2", tmp_path) == layout

    raw = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(tmp_path / "disk.qcow2"), str(raw)], check=True)
    (tmp_path / "x").mkdir()
    out = io.BytesIO()
    n = rootfs.ext4_to_tar(raw, out, tmp_path / "x")
    got = members(out.getvalue())
    assert n == len(got) and "lost+found" not in got and ".dockerenv" not in got
    assert (got["etc/shadow"].mode, got["etc/shadow"].uid, got["etc/shadow"].gid) == (0o640, 0, 42)
    assert got["usr/bin/su"].mode == 0o4755, "setuid kept (debugfs rdump alone drops it)"
    pair = {got["usr/bin/su"].type, got["usr/bin/su2"].type}
    assert pair == {tarfile.REGTYPE, tarfile.LNKTYPE}, "a hard link stays one file"
    assert got["bin"].issym() and got["bin"].linkname == "usr/bin"
    assert (got["home/u/note"].uid, got["home/u/note"].gid, got["home/u/note"].mode) == (1000, 1000, 0o600)
    assert got["run/fifo"].isfifo(), "debugfs rdump alone skips fifos"
    assert got["dev/null"].ischr() and (got["dev/null"].devmajor, got["dev/null"].devminor) == (1, 3)
    assert got["tmp"].mode == 0o1777 and "etc/dev-disk-by\\x2dlabel.mount" in got
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.extractfile("home/u/note").read() == b"written in the container\n"


def test_a_partitioned_disk_is_read_at_its_ext4_partition(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("from a partition\n")
    fs = tmp_path / "fs.raw"
    with open(fs, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-L", "part-root", "-d", str(src), str(fs)], check=True)
    disk = tmp_path / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(18 << 20)
        entry = bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little") + (32768).to_bytes(4, "little")
        f.seek(446)
        f.write(entry)
        f.seek(510)
        f.write(b"\x55\xaa")
        f.seek(2048 * 512)
        f.write(fs.read_bytes())
    found = rootfs.find_ext4(disk)
    assert (found.offset, found.label, found.size) == (1 << 20, "part-root", 16 << 20)
    (tmp_path / "x").mkdir()
    out = io.BytesIO()
    rootfs.ext4_to_tar(disk, out, tmp_path / "x")
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        assert tar.extractfile("hello").read() == b"from a partition\n"


def test_a_disk_without_ext4_is_refused(tmp_path):
    disk = tmp_path / "zeros.raw"
    with open(disk, "wb") as f:
        f.truncate(4 << 20)
    with pytest.raises(InvalidParameter) as e:
        rootfs.find_ext4(disk)
    assert e.value.code == "InvalidParameterCombination" and "no ext2/3/4" in e.value.message


@pytest.mark.parametrize("name,link", [("../outside", ""), ("/abs/../../outside", ""), ("evil", "VICTIM"), ("evil", "../victim")])
def test_a_tar_reaching_outside_its_tree_is_refused(tmp_path, name, link):
    victim = tmp_path / "victim"  # (never a host file: a hard link that got through would be one)
    victim.write_text("not yours")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        if link:
            info.type, info.linkname = tarfile.LNKTYPE, link.replace("VICTIM", str(victim))
        tar.addfile(info, io.BytesIO(b""))
    buf.seek(0)
    with pytest.raises(InvalidParameter) as e:
        rootfs.tar_to_tree(buf, tmp_path / "tree")
    assert e.value.code == "InvalidParameterCombination"
    assert not (tmp_path / "outside").exists() and victim.stat().st_nlink == 1
