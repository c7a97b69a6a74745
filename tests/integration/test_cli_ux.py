"""A student's rough edges, each guarded against the real server (issue 12): names wherever
ids, one clear error each time with the next step, suggestions for typos, engine errors
said plainly, the hypervisor line, key files, state reasons, the tour."""
from __future__ import annotations

import json
import platform
import stat

import boto3
import pytest

from .cloud import Cli

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(server, user, tmp_path):
    c = Cli(server, user, tmp_path / "cli-home")
    yield c
    for iid in c("instances", "ls", "-q", rc=None).stdout.split():
        c("instances", "rm", iid, rc=None)


def test_names_work_wherever_ids_do(cli):
    a = cli.json("instances", "run", "tiny", "--name", "web", "--type", "t2.nano")["id"]
    assert cli.json("instances", "show", "web")["id"] == a
    assert cli("instances", "exec", "web", "hostname").stdout.strip() == "web"
    assert cli.json("instances", "stop", "web")["state"] == "stopped"
    assert cli.json("instances", "start", "web", "--wait")["state"] == "running"
    assert cli.json("explain", "web")["instance_id"] == a
    assert isinstance(cli.json("instances", "console", "web")["output"], str)
    assert cli.json("instances", "show", a[:8])["id"] == a  # an unambiguous id prefix
    b = cli.json("instances", "run", "tiny", "--name", "web", "--type", "t2.nano")["id"]
    twice = cli("instances", "exec", "web", "true", rc=1)
    assert "AmbiguousName" in twice.stderr and a in twice.stderr and b in twice.stderr
    assert "use the instance id" in twice.stderr
    cli("instances", "rm", b)
    assert cli("instances", "exec", "web", "hostname").stdout.strip() == "web"  # the terminated one no longer counts
    missing = cli("instances", "show", "wbe", rc=1)
    assert "no instance named 'wbe' (did you mean 'web'?)" in missing.stderr


def test_an_error_is_printed_once_with_one_hint(cli):
    for verb in ("rm", "stop"):
        err = cli("instances", verb, "i-0123456789abcdef0", rc=1).stderr
        assert err.count("does not exist") == 1 and err.count("hint:") == 1, err
    a = cli.json("instances", "run", "tiny", "--type", "t2.nano")["id"]
    both = cli("instances", "rm", a, "i-0123456789abcdef0", rc=1)
    assert a in both.stdout and "terminated" in both.stdout  # the good one still went
    assert both.stderr.count("error:") == 1
    errors = [json.loads(line) for line in cli("-o", "json", "instances", "rm", "i-0123456789abcdef0",
                                                "i-0123456789abcdef1", rc=1).stderr.splitlines()]
    assert [e["error"]["code"] for e in errors] == ["InvalidInstanceID.NotFound"] * 2


def test_typos_get_suggestions(cli):
    cli("keys", "create", "mykey")
    t = cli("instances", "run", "tiny", "--type", "t2.nanoo", rc=1).stderr
    assert "did you mean 't2.nano' or 't3.nano'?" in t and "hint: `pocketcloud instances types`" in t
    i = cli("instances", "run", "tinyy", rc=1).stderr
    assert "did you mean 'tiny'?" in i
    k = cli("instances", "run", "tiny", "--key", "mykee", rc=1).stderr
    assert "did you mean 'mykey'?" in k
    assert "did you mean 'mykey'?" in cli("keys", "rm", "mykee", rc=1).stderr


def test_an_unbuilt_image_hints_its_own_build_command(cli):
    err = cli("instances", "run", "debian-12", "--kind", "vm", rc=1).stderr
    assert "`pocketcloud images build debian-12`" in err
    assert "images build tiny" not in err and "hint:" not in err  # the message says it already


def test_a_missing_program_is_said_like_a_shell_says_it(cli):
    cli("instances", "run", "tiny", "--name", "box", "--type", "t2.nano")
    proc = cli("instances", "exec", "box", "nosuchcmd", rc=127)
    assert proc.stderr.startswith("nosuchcmd: command not found in this instance") and "OCI" not in proc.stderr


def test_exec_warns_when_the_shell_split_a_script(cli):
    cli("instances", "run", "tiny", "--name", "box", "--type", "t2.nano")
    split = cli("instances", "exec", "box", "--", "sh", "-c", "ps")
    assert "warning: `sh -c ps` runs just 'ps'" in split.stderr and "PID" in split.stdout
    whole = cli("instances", "exec", "box", "--", "sh", "-c", "ps; cat /proc/1/cmdline")
    assert "warning" not in whole.stderr and "/sbin/init" in whole.stdout


def test_keys_rm_removes_the_private_key_file_and_the_name_can_come_back(cli):
    cli("keys", "create", "lab")
    pem = cli.home / "keys" / "lab.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert f"deleted key pair lab and {pem}" in cli("keys", "rm", "lab").stderr
    assert not pem.exists()
    cli("keys", "create", "lab")  # no "already exists" from a stale file
    assert pem.exists()


def test_a_terminated_instance_says_it_was_terminated(cli):
    iid = cli.json("instances", "run", "tiny", "--type", "t2.nano")["id"]
    assert "stopped by its owner" in cli.json("instances", "stop", iid)["state_reason"]
    gone = cli.json("instances", "rm", iid)
    assert gone["state_reason"] == "Client.UserInitiatedShutdown: terminated by its owner"


def test_status_says_the_accelerator_and_why_in_one_line(cli):
    out = cli("status").stdout
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("hypervisor"))
    assert ("TCG (software emulation): " in line or "KVM (hardware virtualization): " in line), line
    raw = cli.json("status")["info"]["hypervisor"]["reason"]
    assert raw not in out  # the raw probe text only with --verbose
    verbose = cli("status", "--verbose").stdout
    assert raw in verbose and line in verbose


def test_containers_have_no_hypervisor_in_ec2(server, user, cleanup):
    ec2 = boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=user.key_id,
                       aws_secret_access_key=user.secret)
    images = {i["Name"]: i for i in ec2.describe_images()["Images"]}
    assert "Hypervisor" not in images["tiny-container"]
    assert images["tiny-vm"]["Hypervisor"] == "kvm"
    iid = ec2.run_instances(ImageId=images["tiny-container"]["ImageId"], InstanceType="t2.nano", MinCount=1,
                            MaxCount=1)["Instances"][0]["InstanceId"]
    cleanup.append((user, iid))
    described = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert "Hypervisor" not in described


def test_the_tour_runs_a_container_and_a_vm_and_compares_them(cli):
    """Kept (--keep) so the VM serves two more checks: `explain` describes libvirtd and
    virtlogd, and a second tour refuses to start over the first one's instances."""
    res = cli.json("tour", "--no-pause", "--keep", timeout=600)
    steps = {s["key"]: s for s in res["steps"]}
    assert set(steps) == {"check", "container", "vm", "compare"}
    rows = {r[0]: r[1:] for r in steps["compare"]["rows"]}
    container_kernel, vm_kernel = rows["kernel (uname -r inside)"]
    assert container_kernel == platform.release() != vm_kernel and vm_kernel.endswith("-cloud-amd64")
    assert rows["isolation boundary"][1].startswith("hardware virtualization boundary")
    explained = cli("explain", "tour-vm").stdout
    assert "libvirtd  the virtualization daemon" in explained and "virtlogd  log daemon" in explained
    again = cli("tour", "--no-pause", rc=2).stderr
    assert "a tour is still running" in again and "pocketcloud instances rm tour-" in again
