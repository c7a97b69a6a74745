"""VM instances through the running server: real libvirtd, real QEMU guests, real SSH."""
from __future__ import annotations

import ipaddress
import os
import pwd
import socket
import time

import paramiko
import pytest

from .cloud import vm_area
from .conftest import run

pytestmark = pytest.mark.integration

USER_DATA = "#!/bin/sh\necho made-by-user-data > /root/user-data-marker\necho user-data-says-hello\n"


def ssh(port: int, private_key: str, command: str, timeout: float = 60) -> tuple[int, str]:
    import io

    key = paramiko.Ed25519Key.from_private_key(io.StringIO(private_key))
    deadline = time.monotonic() + timeout
    while True:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect("127.0.0.1", port=port, username="root", pkey=key, timeout=10, banner_timeout=10,
                           auth_timeout=10, look_for_keys=False, allow_agent=False)
            _, out, _ = client.exec_command(command, timeout=30)
            text = out.read().decode()
            return out.channel.recv_exit_status(), text
        except (paramiko.SSHException, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
        finally:
            client.close()


def forward(inst: dict, guest: int) -> int:
    return next(p["host"] for p in inst["ports"] if p["guest"] == guest)


def virsh(*args: str) -> str:
    out = run(["virsh", "-c", "qemu:///system", *args])
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def another_account_gets_404_and_changes_nothing(server, iid: str) -> None:
    """Every action on someone else's VM answers exactly as for a missing one, and the
    domain keeps running the same boot (same domain id: nothing stopped or rebooted it)."""
    other = server.new_user(f"other-{iid}")
    domid = virsh("domid", f"pc-{iid}")
    for method, path, body in [("GET", f"/instances/{iid}", None), ("POST", f"/instances/{iid}/stop", None),
                               ("POST", f"/instances/{iid}/start", None), ("POST", f"/instances/{iid}/reboot", None),
                               ("GET", f"/instances/{iid}/console", None), ("GET", f"/instances/{iid}/internals", None),
                               ("POST", f"/instances/{iid}/exec", {"command": "poweroff -f"}),
                               ("DELETE", f"/instances/{iid}", None)]:
        status, answer = other(method, path, json=body)
        assert (status, answer["error"]["code"]) == (404, "InvalidInstanceID.NotFound"), (method, path, answer)
    assert other.ok("GET", "/instances")["instances"] == []
    assert (virsh("domstate", f"pc-{iid}"), virsh("domid", f"pc-{iid}")) == ("running", domid)


def qemu_runs_unprivileged(server, user, iid: str) -> None:
    """QEMU runs as libvirt-qemu, although the cloud's home is reachable by root only: its
    overlay is handed to that user by libvirt, the shared base disk stays root's."""
    assert any(not p.stat().st_mode & 0o001 for p in server.home.parents), "a home QEMU cannot reach"
    lq = pwd.getpwnam("libvirt-qemu")
    internals = user.ok("GET", f"/instances/{iid}/internals")
    pid = internals["summary"]["host_pid"]
    assert (os.stat(f"/proc/{pid}").st_uid, internals["qemu"]["user"], internals["summary"]["host_user"]) == (
        lq.pw_uid, "libvirt-qemu", "libvirt-qemu")
    inst_dir = vm_area(server.home) / "instances" / iid
    overlay, base = internals["disk_chain"][0]["file"], internals["disk_chain"][1]["file"]
    assert overlay == str(inst_dir / "root.qcow2") and os.stat(overlay).st_uid == lq.pw_uid
    assert base.startswith(str(vm_area(server.home))) and os.stat(base).st_uid == 0
    assert "relabel='no'" not in virsh("dumpxml", f"pc-{iid}").split("<backingStore")[0]


def network_of(user, iid: str, server) -> str:
    """Where a VM's address comes from: the libvirt network's block, or with VPC networking its
    subnet's (pocketcloud's IPAM; its bridge is named in the instance's internals)."""
    path = user.ok("GET", f"/instances/{iid}/internals").get("vpc_path")
    if not path:
        return server.vm_cidr
    return next(s["cidr"] for s in user.ok("GET", "/subnets")["subnets"] if s["id"] == path["subnet"])


def test_tiny_vm_lifecycle_over_ssh(server, user, docker_client):
    """One tiny VM through its whole life: SSH with the user's key, user-data read back,
    another account refused, a server restart (the SSH forward comes back), a reboot and a
    stop/start through the API, the console, exec, and nothing left after terminate."""
    key = user.ok("POST", "/keys", 201, json={"name": "vmkey"})
    inst = user.ok("POST", "/instances", 201, json={"name": "vm1", "kind": "vm", "image": "tiny",
                                                     "type": "t2.nano", "key_name": "vmkey", "user_data": USER_DATA})
    iid = inst["id"]
    try:
        assert inst["state"] == "pending", "a VM launch answers at once, as EC2 does"
        inst = user.wait_state(iid)
        assert inst["state"] == "running" and inst["kind"] == "vm"
        boot = inst["boot"]
        assert [p["name"] for p in boot["phases"]] == ["defined", "qemu-started", "kernel", "network", "ssh-ready"]
        assert boot["phase"] == "ssh-ready"
        elapsed = [p["elapsed"] for p in boot["phases"]]
        assert elapsed == sorted(elapsed) and all(p["at"].endswith("Z") for p in boot["phases"])
        assert ipaddress.ip_address(inst["private_ip"]) in ipaddress.ip_network(network_of(user, iid, server))
        port = forward(inst, 22)
        rc, out = ssh(port, key["private_key"], "cat /root/user-data-marker; hostname; uname -r; "
                                                "cat /proc/sys/kernel/random/boot_id")
        marker, hostname, kernel, boot_id = out.split()
        assert (rc, marker, hostname) == (0, "made-by-user-data", "vm1")
        import platform

        assert kernel != platform.release(), "a VM runs its own kernel"
        assert virsh("domstate", f"pc-{iid}") == "running"
        qemu_runs_unprivileged(server, user, iid)
        info = user.ok("GET", "/info")
        assert info["hypervisor"]["mode"] in ("kvm", "qemu") and info["hypervisor"]["reason"]
        assert inst["hypervisor"] == {"mode": info["hypervisor"]["mode"], "reason": info["hypervisor"]["reason"]}

        another_account_gets_404_and_changes_nothing(server, iid)

        # The forward lives in the server process: a restart must open it again.
        domid = virsh("domid", f"pc-{iid}")
        server.restart()
        assert user.ok("GET", f"/instances/{iid}")["state"] == "running"
        assert virsh("domid", f"pc-{iid}") == domid, "a server restart leaves the guest alone"
        rc, out = ssh(port, key["private_key"], "cat /proc/sys/kernel/random/boot_id")
        assert (rc, out.strip()) == (0, boot_id), "the same boot, reached through the re-opened forward"

        rebooted = user.ok("POST", f"/instances/{iid}/reboot")
        assert rebooted["state"] == "running" and forward(rebooted, 22) == port
        assert virsh("domstate", f"pc-{iid}") == "running"
        rc, out = ssh(port, key["private_key"], "cat /proc/sys/kernel/random/boot_id; wc -l < /root/user-data-marker")
        new_boot_id, marker_lines = out.split()
        assert new_boot_id != boot_id, "the guest really booted again"
        assert marker_lines == "1", "user-data runs once per instance, not per boot"

        ssh(port, key["private_key"], "echo still-here > /root/persist; sync")
        stopped = user.ok("POST", f"/instances/{iid}/stop")
        assert stopped["state"] == "stopped"
        assert virsh("domstate", f"pc-{iid}") == "shut off"
        started = user.ok("POST", f"/instances/{iid}/start")
        assert started["state"] == "running" and forward(started, 22) == port
        rc, out = ssh(port, key["private_key"], "cat /root/persist; wc -l < /root/user-data-marker")
        assert out.split() == ["still-here", "1"], "the disk survives a stop; user-data ran once"
        res = user.ok("POST", f"/instances/{iid}/exec", json={"command": "uname -r"})
        assert res["exit_code"] == 0 and res["stdout"].strip() == kernel
        console = user.ok("GET", f"/instances/{iid}/console")
        # Three boots (launch, reboot, start), each to the end; user-data ran in the first only.
        assert console.count(f"pocketcloud-init: booting pocketcloud tiny (vm), kernel {kernel}") == 3, console
        assert console.count("pocketcloud-init: ready") == 3
        assert console.count("pocketcloud-init: instance-id " + iid + ", hostname vm1") == 3
        assert console.count("user-data-says-hello") == 1 and "user-data finished with exit code 0" in console
        last = user.ok("GET", f"/instances/{iid}/console", params={"tail": "2"})
        assert last.splitlines() == console.splitlines()[-2:]
    finally:
        gone = user.ok("DELETE", f"/instances/{iid}")
        user("DELETE", "/keys/vmkey")
    assert gone["state"] == "terminated"
    assert run(["virsh", "-c", "qemu:///system", "dominfo", f"pc-{iid}"]).returncode != 0
    assert not (vm_area(server.home) / "instances" / iid).exists(), "overlay, seed and console log are removed"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the SSH forward is closed"


def test_the_teaching_pair_same_rootfs_different_kernels(server, user, cleanup):
    vm = user.ok("POST", "/instances", 201, json={"kind": "vm", "image": "tiny", "type": "t2.nano"})
    cleanup.append((user, vm["id"]))
    user.wait_state(vm["id"])
    ct = user.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny", "type": "t2.nano"})
    cleanup.append((user, ct["id"]))
    probe = {"command": "uname -r; cat /etc/os-release"}
    v = user.ok("POST", f"/instances/{vm['id']}/exec", json=probe)["stdout"].split("\n", 1)
    c = user.ok("POST", f"/instances/{ct['id']}/exec", json=probe)["stdout"].split("\n", 1)
    import platform

    assert c[0] == platform.release() and v[0] != platform.release()
    assert v[1] == c[1], "the same /etc/os-release: one rootfs, two isolation models"
    internals = user.ok("GET", f"/instances/{vm['id']}/internals")
    pid = internals["summary"]["host_pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f"pc-{vm['id']}".encode() in f.read()
    assert internals["hypervisor"]["mode"] == user.ok("GET", "/info")["hypervisor"]["mode"]


def domains(server) -> set[str]:
    """This cloud's domains, by the label each carries (other clouds may run on the host)."""
    from emulator.compute.engines import build_drivers
    from emulator.config import Config

    config = Config(home=server.home, vm_network=server.vm_network, vm_cidr=server.vm_cidr)
    return {e.engine_id for e in build_drivers(config)["vm"].list_managed(config.instance_label).values()}


def test_vm_bad_input_leaves_nothing(server, user):
    before = domains(server)
    for payload, status, code in [
        ({"kind": "vm", "image": "no-such"}, 404, "InvalidAMIID.NotFound"),
        ({"kind": "vm", "image": "tiny", "type": "r5.xlarge"}, 400, "InsufficientInstanceCapacity"),
        ({"kind": "vm", "image": "tiny", "key_name": "missing"}, 404, "InvalidKeyPair.NotFound"),
    ]:
        got, body = user("POST", "/instances", json=payload)
        assert (got, body["error"]["code"]) == (status, code), body
    assert user.ok("GET", "/instances")["instances"] == []
    assert domains(server) == before


def test_domain_destroyed_or_undefined_behind_our_back(server, user):
    a = user.ok("POST", "/instances", 201, json={"kind": "vm", "image": "tiny", "type": "t2.nano"})
    b = user.ok("POST", "/instances", 201, json={"kind": "vm", "image": "tiny", "type": "t2.nano"})
    try:
        user.wait_state(a["id"])
        user.wait_state(b["id"])
        server.stop()
        assert run(["virsh", "-c", "qemu:///system", "destroy", f"pc-{a['id']}"]).returncode == 0
        run(["virsh", "-c", "qemu:///system", "destroy", f"pc-{b['id']}"])
        assert run(["virsh", "-c", "qemu:///system", "undefine", f"pc-{b['id']}"]).returncode == 0
        server.start()
        states = {i["id"]: i for i in user.ok("GET", "/instances")["instances"]}
        assert states[a["id"]]["state"] == "stopped"
        assert states[b["id"]]["state"] == "terminated"
        assert user.ok("POST", f"/instances/{a['id']}/start")["state"] == "running"
    finally:
        user("DELETE", f"/instances/{a['id']}")
        user("DELETE", f"/instances/{b['id']}")
