"""The directory QEMU reaches as libvirt-qemu: modes, owners, staged image files, removal.
Runs as root (like the suite); the user is Debian's libvirt-qemu (installed with libvirt)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from emulator.compute.libvirt.qemu_area import QemuArea, qemu_user


@pytest.fixture
def area(tmp_path: Path) -> QemuArea:
    user = qemu_user()
    assert user is not None, "libvirt-qemu must exist and the tests run as root"
    return QemuArea(tmp_path / "varlib" / "label0", user)


def _image(tmp_path: Path, mode: int = 0o644) -> dict:
    img = tmp_path / "home" / "tiny"
    img.mkdir(parents=True)
    for name in ("vmlinuz", "initrd.img", "disk.qcow2"):
        (img / name).write_bytes(name.encode() * 10)
        (img / name).chmod(mode)
    return {"dir": img, "kernel": img / "vmlinuz", "initrd": img / "initrd.img", "disk": img / "disk.qcow2",
            "cmdline": "x"}


def test_the_area_is_for_qemus_group_only_and_the_top_lists_nothing(area: QemuArea):
    inst = area.new_instance_dir("i-0123456789abcdef0")
    for d in (area.root, area.instances, inst):
        st = d.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 0, area.user.gid), d
    assert stat.S_IMODE(area.root.parent.stat().st_mode) == 0o711
    with pytest.raises(FileExistsError):  # an existing instance's directory is never reused
        area.new_instance_dir("i-0123456789abcdef0")


def test_image_files_are_linked_into_the_area_and_staging_again_keeps_them(area: QemuArea, tmp_path: Path):
    vm = _image(tmp_path)
    staged = area.stage_image(vm)
    for key in ("kernel", "initrd", "disk"):
        assert staged[key].parent.parent == area.root / "images"
        assert staged[key].read_bytes() == vm[key].read_bytes()
        assert os.stat(staged[key]).st_ino == os.stat(vm[key]).st_ino  # a hard link, no copy
    assert staged["dir"] == vm["dir"] and staged["cmdline"] == "x"
    assert area.stage_image(vm) == staged


def test_a_file_others_cannot_read_is_copied_for_qemus_group(area: QemuArea, tmp_path: Path):
    vm = _image(tmp_path, mode=0o600)
    staged = area.stage_image(vm)
    st = os.stat(staged["disk"])
    assert st.st_ino != os.stat(vm["disk"]).st_ino
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o640, area.user.gid)
    assert stat.S_IMODE(os.stat(vm["disk"]).st_mode) == 0o600  # the original is untouched


def test_a_rebuilt_image_replaces_the_staged_file(area: QemuArea, tmp_path: Path):
    vm = _image(tmp_path)
    area.stage_image(vm)
    vm["kernel"].unlink()
    vm["kernel"].write_bytes(b"new kernel")
    vm["kernel"].chmod(0o644)
    assert area.stage_image(vm)["kernel"].read_bytes() == b"new kernel"


def test_remove_takes_the_whole_area(area: QemuArea, tmp_path: Path):
    area.stage_image(_image(tmp_path))
    area.new_instance_dir("i-0123456789abcdef0")
    area.remove()
    assert not area.root.exists() and area.root.parent.exists()


def test_without_a_user_to_hand_files_to_the_home_is_used_as_before(tmp_path: Path):
    home_vms = tmp_path / "vms"
    area = QemuArea(home_vms, None)
    vm = _image(tmp_path)
    assert area.stage_image(vm) is vm
    assert area.new_instance_dir("i-0123456789abcdef0") == home_vms / "instances" / "i-0123456789abcdef0"


def test_the_area_lives_while_the_cloud_has_vms(area: QemuArea, tmp_path: Path):
    vm = _image(tmp_path)
    staged, first = area.claim("i-0000000000000000a", vm)
    _, second = area.claim("i-0000000000000000b", vm)
    area.release("i-0000000000000000a")
    assert not first.exists() and second.exists() and staged["disk"].exists()
    area.release("i-0000000000000000b")
    assert not area.root.exists(), "the last instance's removal takes the area and its image links"
    staged, again = area.claim("i-0000000000000000c", vm)  # the next launch makes it again
    assert again.is_dir() and staged["kernel"].read_bytes() == vm["kernel"].read_bytes()


def test_a_probe_alone_leaves_no_area(area: QemuArea, tmp_path: Path):
    area.stage_image(_image(tmp_path))
    area.ensure("probe")
    area.tidy()
    assert not area.root.exists()
    area.new_instance_dir("i-0123456789abcdef0")
    area.tidy()
    assert area.root.exists(), "an instance's area is never tidied away"
