"""Launches that fail inside the engine, through a real server: everything made on the
way is removed; a container's record goes with its failed (synchronous) launch, a VM's
(answered `pending` at once) ends `terminated` with the engine's reason.

A server of its own, whose catalog holds two broken images built from recipes written
here: `broken` (a VM kernel QEMU refuses to load; a container image without /sbin/init,
so dockerd creates the container and then fails to start it) and `noboot` (tiny's kernel
and disk told to mount its seed ISO as the ext4 root: the guest boots, drops to a shell
at once, never becomes ready, and hits its 15 s boot timeout).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from emulator.config import Config
from tests.conftest import stop_and_check_leaks

from .cloud import Server
from .conftest import engine_snapshot

pytestmark = pytest.mark.integration

BROKEN = """set -eu
out=$1
printf 'this is not a kernel\\n' > "$out/vmlinuz"
printf 'nor an initrd\\n' > "$out/initrd.img"
qemu-img create -q -f qcow2 "$out/disk.qcow2" 64M
cat > "$out/vm.json" <<'JSON'
{"kernel": "vmlinuz", "initrd": "initrd.img", "disk": "disk.qcow2", "cmdline": "console=ttyS0",
 "ssh": true, "ready_marker": "never printed", "boot_timeout": 30, "min_memory_mib": 64}
JSON
mkdir -p "$out/root/etc"
echo broken > "$out/root/etc/hostname"
tar -C "$out/root" -cf "$out/rootfs.tar" .
rm -rf "$out/root"
"""

NOBOOT = """set -eu
out=$1
cp "$TINY_VM_DIR/vmlinuz" "$TINY_VM_DIR/initrd.img" "$TINY_VM_DIR/disk.qcow2" "$out/"
sed -e 's#root=/dev/vda#root=/dev/vdb#' -e 's#"boot_timeout": [0-9]*#"boot_timeout": 15#' \\
    "$TINY_VM_DIR/vm.json" > "$out/vm.json"
grep -q 'root=/dev/vdb' "$out/vm.json"
"""


@pytest.fixture(scope="module")
def faulty(server, tmp_path_factory, docker_client):
    """A server of its own with the broken images in its catalog."""
    base = tmp_path_factory.mktemp("faulty")
    tiny_vm = next(i for i in server.admin.ok("GET", "/images")["images"] if i["name"] == "tiny")["kinds"]["vm"]["ref"]
    for name, script in (("broken", BROKEN), ("noboot", NOBOOT)):
        (base / "recipes" / name).mkdir(parents=True)
        (base / "recipes" / name / "build.sh").write_text(script)
    srv = Server(base / "home", server.log_path.parent)
    srv.env.update(POCKETCLOUD_RECIPES=str(base / "recipes"), POCKETCLOUD_CACHE=str(base / "cache"),
                   TINY_VM_DIR=tiny_vm)
    for name in ("broken", "noboot"):
        built = srv.cli("images", "build", name, check=False)
        assert built.returncode == 0, built.stdout + built.stderr
    srv.start()
    yield srv, Config(home=srv.home, vm_network=srv.vm_network, vm_cidr=srv.vm_cidr)
    for image in docker_client.images.list(name="pocketcloud/broken"):
        docker_client.images.remove(image.id, force=True)
    shutil.rmtree(base / "cache", ignore_errors=True)
    stop_and_check_leaks(srv, docker_client)


def test_container_that_cannot_start_is_rolled_back(faulty, docker_client):
    srv, config = faulty
    api = srv.admin
    before = engine_snapshot(srv, config, docker_client)
    status, body = api("POST", "/instances", json={"image": "broken", "kind": "container", "ports": [{"guest": 80}]})
    assert status == 502 and body["error"]["code"] == "InternalError", body
    assert "/sbin/init" in body["error"]["message"], "the engine's own reason reaches the caller"
    assert api.ok("GET", "/instances", params={"all": "1"})["instances"] == []
    assert engine_snapshot(srv, config, docker_client) == before


def test_vm_whose_kernel_qemu_refuses_is_rolled_back(faulty, docker_client):
    """QEMU exits at start, after the overlay, the seed, the DHCP reservation, the SSH
    forward and the domain definition were made: every one of them goes."""
    srv, config = faulty
    api = srv.admin
    before = engine_snapshot(srv, config, docker_client)
    inst = api.ok("POST", "/instances", 201, json={"image": "broken", "kind": "vm", "type": "t2.nano"})
    assert inst["state"] == "pending", "a VM launch answers at once; it fails in the server"
    failed = api.wait_state(inst["id"], "terminated", timeout=120)
    reason = failed["state_reason"]
    assert reason.startswith("Server.InternalError: the launch failed: (InternalError) "), reason
    assert "libvirtd said" in reason, "the engine's own reason reaches the caller"
    assert [i["id"] for i in api.ok("GET", "/instances", params={"all": "1"})["instances"]
            if i["state"] != "terminated"] == []
    assert engine_snapshot(srv, config, docker_client) == before


def test_vm_that_never_becomes_ready_times_out_and_is_removed(faulty, docker_client):
    srv, config = faulty
    api = srv.admin
    before = engine_snapshot(srv, config, docker_client)
    inst = api.ok("POST", "/instances", 201, json={"image": "noboot", "kind": "vm", "type": "t2.nano"})
    message = api.wait_state(inst["id"], "terminated", timeout=180)["state_reason"]
    assert message.startswith("Server.InternalError: the launch failed: (InstanceBootTimeout) "), message
    assert "did not become ready within 15s" in message
    kept = Path(re.search(r"console log kept at (\S+?)\.?\n", message).group(1))
    assert kept.parent == srv.home / "vms" / "logs"
    assert "cannot mount root /dev/vdb" in kept.read_text(), "the kept console shows why the guest never got ready"
    assert "cannot mount root /dev/vdb" in message, "and so does the state reason"
    assert [i["state"] for i in api.ok("GET", "/instances", params={"all": "1"})["instances"]
            if i["id"] == inst["id"]] == ["terminated"]
    assert engine_snapshot(srv, config, docker_client) == before
