"""kill -9 of the server in the middle of an attach (after the engine attached, before the
record said so), then a restart: its reconcile pass finds the volume on the engine and
records it in-use; the container still sees its data; the volume detaches and deletes
cleanly, and nothing leaks (mounts, exports, files)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import docker
import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from emulator.compute.hostmount import mountpoints
from tests.conftest import start_server, stop_and_check_leaks

from .test_ec2 import ec2_for
from .test_ec2_vpc import code_of
from .test_volume_vms import sh, wait_volume

pytestmark = pytest.mark.integration


def crash_and_restart(srv, call) -> None:
    """`call` meets the fault hook: the server dies under it (its gunicorn master too); then
    the server starts again without the hook, reconciling once before it answers."""
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        call()
    srv.proc.wait(60)
    try:
        os.killpg(srv.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    srv.env.pop("POCKETCLOUD_FAULT")
    srv.start()


def test_a_server_killed_mid_attach_reconciles_the_volume_in_use(tmp_path, docker_client):
    srv = start_server(tmp_path / "home", POCKETCLOUD_FAULT="volume:after-engine-attach")
    try:
        user = srv.new_user(f"crashvol{srv.port}")
        ec2 = ec2_for(srv, user)
        ct = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
        vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
        crash_and_restart(srv, lambda: ec2.attach_volume(VolumeId=vid, InstanceId=ct["id"], Device="/dev/sdf"))
        v = wait_volume(ec2, vid, "in-use", timeout=30)
        assert v["Attachments"][0]["InstanceId"] == ct["id"] and v["Attachments"][0]["Device"] == "/dev/sdf"
        assert user.ok("GET", f"/volumes/{vid}")["guest_device"] == "/volumes/sdf"
        sh(user, ct["id"], "echo after-restart > /volumes/sdf/f && cat /volumes/sdf/f")
        lid = user.ok("GET", f"/volumes/{vid}/internals")
        assert lid["chain"][0]["format"] == "qcow2" and lid["attachment"]["kind"] == "container"
        ec2.detach_volume(VolumeId=vid)
        wait_volume(ec2, vid, "available")
        ec2.delete_volume(VolumeId=vid)
        user.ok("DELETE", f"/instances/{ct['id']}")
    finally:
        srv.env.pop("POCKETCLOUD_FAULT", None)
        if srv.proc.poll() is not None:
            srv.start()
        stop_and_check_leaks(srv, docker_client)


def kill_server(srv) -> None:
    os.killpg(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(30)


def reboot_host(srv, docker_client, instance_ids: list[str]) -> None:
    """What a host reboot does to a cloud (short of rebooting the test machine): its server,
    its containers and its qemu-storage-daemon exports die, the kernel forgets every mount;
    dockerd's own attempt to start the containers again fails (their rslave /volumes needs a
    shared mount, which only pocketcloud makes)."""
    home = Path(srv.home)
    kill_server(srv)
    for iid in instance_ids:
        docker_client.containers.get(f"pc-{iid}").stop(timeout=1)
    for pidfile in (home / "volume-run").glob("*.pid"):  # this cloud's exports only
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
    for m in sorted((m for m in mountpoints() if m.startswith(str(home) + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], check=True)
    assert not [m for m in mountpoints() if m.startswith(str(home) + "/")]
    for iid in instance_ids:
        with pytest.raises(docker.errors.APIError, match="shared or slave"):
            docker_client.containers.get(f"pc-{iid}").start()


def test_container_volumes_come_back_after_a_server_kill_and_a_host_reboot(tmp_path, docker_client):
    srv = start_server(tmp_path / "home")
    try:
        user = srv.new_user(f"rebootvol{srv.port}")
        ec2 = ec2_for(srv, user)
        ct = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny", "block_devices": [
            {"device": "/dev/sdf", "size_gib": 1}]})
        plain = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
        [vol] = [v for v in ec2.describe_volumes()["Volumes"] if v["Attachments"][0]["Device"] == "/dev/sdf"]
        sh(user, ct["id"], "echo written-before > /volumes/sdf/proof && sync")

        kill_server(srv)  # kill -9: mounts and exports live on; the restarted server finds them
        srv.start()
        assert sh(user, ct["id"], "cat /volumes/sdf/proof").strip() == "written-before"

        reboot_host(srv, docker_client, [ct["id"], plain["id"]])
        srv.start()  # reconciles once before it answers: mounts again, then starts the containers
        for iid in (ct["id"], plain["id"]):
            assert user.wait_state(iid, timeout=60)["state"] == "running"
        assert sh(user, ct["id"], "cat /volumes/sdf/proof; grep ' /volumes/sdf ' /proc/mounts").startswith(
            "written-before")
        sh(user, ct["id"], "echo written-after > /volumes/sdf/proof2 && sync")
        assert wait_volume(ec2, vol["VolumeId"], "in-use")["Attachments"][0]["InstanceId"] == ct["id"]

        # a lost export alone (qemu-storage-daemon killed, the container running): the next
        # reconcile pass mounts it again and the running container sees it through propagation
        [pidfile] = (Path(srv.home) / "volume-run").glob("*.pid")
        dead = int(pidfile.read_text())
        os.kill(dead, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not (pidfile.exists() and pidfile.read_text().strip() not in ("", str(dead))):
            assert time.monotonic() < deadline, "the export was not restarted"
            time.sleep(0.3)
        Path("/proc/sys/vm/drop_caches").write_text("1")  # the read below goes to the new export
        assert sh(user, ct["id"], "i=0; until cat /volumes/sdf/proof2 2>/dev/null; do i=$((i+1)); "
                                  "[ $i -lt 100 ] || exit 1; sleep 0.3; done").strip() == "written-after"
        ec2.terminate_instances(InstanceIds=[ct["id"], plain["id"]])
        assert code_of(lambda: ec2.describe_volumes(VolumeIds=[vol["VolumeId"]])) == "InvalidVolume.NotFound"
    finally:
        if srv.proc.poll() is not None:
            srv.start()
        stop_and_check_leaks(srv, docker_client)
