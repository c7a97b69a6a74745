"""kill -9 of the server in the middle of an attach (after the engine attached, before the
record said so), then a restart: its reconcile pass finds the volume on the engine and
records it in-use; the container still sees its data; the volume detaches and deletes
cleanly, and nothing leaks (mounts, exports, files)."""
from __future__ import annotations

import os
import signal

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from tests.conftest import start_server, stop_and_check_leaks

from .test_ec2 import ec2_for
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
