"""The `pocketcloud` CLI end to end: a subprocess per command, against the running server,
with only env credentials (POCKETCLOUD_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY),
exactly as a student or a script runs it. Exit codes: 0 ok, 1 the cloud said no, 2 usage
or unreachable."""
from __future__ import annotations

import json
import os
import platform
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from .cloud import PC, Api, Cli

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(server, user, tmp_path):
    return Cli(server, user, tmp_path / "cli-home")


@pytest.fixture
def admin_cli(server, tmp_path):
    return Cli(server, server.admin, tmp_path / "admin-home")


@pytest.fixture
def terminate_all(cli):
    yield
    for iid in cli("instances", "ls", "-q", rc=None).stdout.split():
        cli("instances", "rm", iid, rc=None)


# -- status, env, completion ---------------------------------------------------------------
def test_status_table_and_json(cli):
    out = cli("status").stdout
    assert "signed in as u" in out and "container" in out and "up" in out
    data = cli.json("status")
    assert data["account"]["role"] == "user"
    assert data["info"]["engines"]["container"]["available"] is True


def test_env_prints_exports_from_the_servers_home(server):
    env = {**os.environ, "POCKETCLOUD_HOME": str(server.home)}
    out = subprocess.run([PC, "env"], env=env, capture_output=True, text=True, check=True).stdout
    assert "export AWS_ACCESS_KEY_ID=AKIA" in out and "export AWS_ENDPOINT_URL=http://127.0.0.1:" in out


def test_shell_completion_script_and_live_ids(cli, terminate_all):
    assert "_POCKETCLOUD_COMPLETE" in cli("completion", "bash").stdout
    inst = cli.json("instances", "run", "tiny", "--type", "t2.nano")
    proc = cli(env={"_POCKETCLOUD_COMPLETE": "bash_complete", "COMP_WORDS": "pocketcloud instances show i-",
                    "COMP_CWORD": "3"})
    assert inst["id"] in proc.stdout


# -- instances -------------------------------------------------------------------------------
def test_instance_lifecycle(cli, terminate_all):
    inst = cli.json("instances", "run", "tiny", "--name", "web", "--type", "t2.nano", "--port", "80",
                    "--tag", "course=os101", "--wait")
    iid = inst["id"]
    assert inst["state"] == "running" and inst["ports"][0]["guest"] == 80

    listed = cli.json("instances", "ls")["instances"]
    assert [i["id"] for i in listed] == [iid]
    table = cli("instances", "ls").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "NAME", "KIND"] and iid in table[1] and "running" in table[1]
    assert cli("instances", "ls", "-q").stdout.split() == [iid]
    assert cli.json("instances", "ls", "--tag", "course=os101")["instances"][0]["id"] == iid
    assert cli.json("instances", "ls", "--state", "stopped")["instances"] == []
    assert "course" in cli("instances", "show", iid).stdout

    # exec: the command's own output and exit code
    assert cli("instances", "exec", iid, "uname", "-r").stdout.strip() == platform.release()
    assert cli("instances", "exec", iid, "--", "sh", "-c", "echo oops >&2; exit 3", rc=3).stderr.strip() == "oops"
    assert cli.json("instances", "exec", iid, "hostname", rc=0)["exit_code"] == 0
    assert cli("instances", "show", iid, "-o", "json").stdout.startswith("{")  # -o after the subcommand too

    stopped = cli.json("instances", "stop", iid, "--wait")
    assert stopped["state"] == "stopped" and stopped["previous_state"] == "running"
    assert cli.json("instances", "start", iid, "--wait")["state"] == "running"
    assert cli.json("instances", "reboot", iid)["state"] == "running"
    assert isinstance(cli.json("instances", "console", iid)["output"], str)

    explained = cli("explain", iid).stdout
    for layer in ("your app", "pocketcloud API", "dockerd", "containerd", "runc", "namespaces + cgroups",
                  "host Linux kernel"):
        assert layer in explained, layer
    assert cli.json("explain", iid)["kind"] == "container"

    gone = cli.json("instances", "rm", iid)
    assert gone["state"] == "terminated"
    assert cli("instances", "exec", iid, "true", rc=1).stderr.startswith("error: ")


def test_compare_two_instances_side_by_side(cli, terminate_all):
    a = cli.json("instances", "run", "tiny", "--type", "t2.nano")["id"]
    b = cli.json("instances", "run", "tiny", "--type", "t2.micro")["id"]
    rows = cli.json("compare", a, b)["instances"]
    assert [r["id"] for r in rows] == [a, b]
    assert rows[0]["kernel"] == rows[1]["kernel"] == platform.release()  # containers share the host kernel
    assert rows[0]["host_pid"] != rows[1]["host_pid"]
    assert "OOM" in rows[0]["memory_test"] or "refused" in rows[0]["memory_test"]
    text = cli("compare", a, b).stdout
    assert f"container {a}" in text and "kernel (uname -r inside)" in text


def test_types_and_images(cli):
    types = {t["name"] for t in cli.json("instances", "types")["instance_types"]}
    assert {"t2.nano", "t2.micro", "m5.large"} <= types
    images = cli.json("images", "ls")["images"]
    assert any(i["name"] == "tiny" and "container" in i["kinds"] for i in images)
    assert "tiny" in cli("images", "ls").stdout
    proc = cli("images", "rm", "tiny", rc=1)  # only an admin may
    assert "UnauthorizedOperation" in proc.stderr and "admin" in proc.stderr


# -- errors that scripts and people can act on ----------------------------------------------
def test_errors_exit_codes_and_hints(cli, server, tmp_path):
    missing = cli("instances", "show", "i-0123456789abcdef0", rc=1)
    assert "does not exist" in missing.stderr and "hint: `pocketcloud instances ls`" in missing.stderr
    err = json.loads(cli("-o", "json", "instances", "show", "i-0123456789abcdef0", rc=1).stderr)
    assert err["error"]["code"] == "InvalidInstanceID.NotFound" and err["error"]["status"] == 404

    bad_image = cli("instances", "run", "no-such-image", rc=1)
    assert "images" in bad_image.stderr and "InvalidAMIID.NotFound" in bad_image.stderr

    usage = cli("instances", "run", "tiny", "--port", "http", rc=2)
    assert "GUEST or HOST:GUEST" in usage.stderr

    wrong = cli("instances", "ls", rc=1, env={"AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    assert "SignatureDoesNotMatch" in wrong.stderr and "AWS_SECRET_ACCESS_KEY" in wrong.stderr

    down = cli("instances", "ls", rc=2, env={"POCKETCLOUD_ENDPOINT": "http://127.0.0.1:9"})
    assert "cannot reach pocketcloud" in down.stderr and "make up" in down.stderr

    env = {k: v for k, v in cli.env.items() if not k.startswith("AWS_")}
    env["POCKETCLOUD_HOME"] = str(tmp_path / "empty")
    proc = subprocess.run([PC, "instances", "ls"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and "no credentials" in proc.stderr and "AWS_ACCESS_KEY_ID" in proc.stderr


def test_quota_error_says_how_to_fix_it(server, admin_cli, tmp_path, cleanup):
    name = f"quota-{server.port}"
    acct = admin_cli.json("accounts", "create", name, "--max-instances", "1")
    user = Api(server.url, acct["access_key_id"], acct["secret_access_key"])
    cli = Cli(server, user, tmp_path / "q")
    first = cli.json("instances", "run", "tiny", "--type", "t2.nano")
    cleanup.append((user, first["id"]))
    proc = cli("instances", "run", "tiny", "--type", "t2.nano", rc=1)
    assert "InstanceLimitExceeded" in proc.stderr and "accounts quota" in proc.stderr

    shown = admin_cli.json("accounts", "quota", name)
    assert shown["max_instances"] == 1 and shown["instances"] == 1
    raised = admin_cli.json("accounts", "quota", name, "--max-instances", "3", "--storage", "1G")
    assert raised["max_instances"] == 3 and raised["storage_quota"] == 1024 ** 3
    second = cli.json("instances", "run", "tiny", "--type", "t2.nano")
    cleanup.append((user, second["id"]))
    # a user may read its own quota, not change it or read another's
    assert cli.json("accounts", "quota", name)["max_instances"] == 3
    assert "UnauthorizedOperation" in cli("accounts", "quota", name, "--max-instances", "99", rc=1).stderr
    assert "UnauthorizedOperation" in cli("accounts", "quota", "admin", rc=1).stderr
    assert admin_cli.json("accounts", "quota", name, "--storage", "none")["storage_quota"] is None
    assert "500M, 10G" in admin_cli("accounts", "quota", name, "--storage", "lots", rc=2).stderr


def test_accounts_create_and_list(admin_cli, cli, server):
    name = f"acc-{server.port}"
    created = admin_cli.json("accounts", "create", name)
    assert created["access_key_id"].startswith("AKIA") and len(created["secret_access_key"]) == 40
    assert name in {a["name"] for a in admin_cli.json("accounts", "ls")["accounts"]}
    assert "already exists" in admin_cli("accounts", "create", name, rc=1).stderr
    # an ordinary user sees only itself and cannot create accounts
    assert len(cli.json("accounts", "ls")["accounts"]) == 1
    assert "UnauthorizedOperation" in cli("accounts", "create", "nope", rc=1).stderr


# -- keys and ssh ------------------------------------------------------------------------------
def test_keys_create_import_ls_rm(cli, tmp_path):
    kp = cli.json("keys", "create", "laptop")
    path = Path(kp["private_key_file"])
    assert path == cli.home / "keys" / "laptop.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert "private_key" not in kp  # printed nowhere: it lives in the file
    # the saved key really is the private half of the registered public key
    pub = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True).stdout
    assert pub.split()[1] == kp["public_key"].split()[1]
    assert "already exists" in cli("keys", "create", "laptop", rc=2).stderr  # never overwrite a key file

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "mine")], check=True)
    imported = cli.json("keys", "import", "mine", str(tmp_path / "mine.pub"))
    assert imported["type"] == "ed25519"
    assert {k["name"] for k in cli.json("keys", "ls")["keys"]} == {"laptop", "mine"}
    assert "laptop" in cli("keys", "ls").stdout

    cli("keys", "rm", "mine")
    proc = cli("keys", "rm", "mine", rc=1)
    assert "InvalidKeyPair.NotFound" in proc.stderr and "keys ls" in proc.stderr


def test_ssh_uses_the_forward_and_the_saved_key(cli, tmp_path, terminate_all):
    cli("keys", "create", "k1")
    inst = cli.json("instances", "run", "tiny", "--type", "t2.nano", "--port", "22", "--key", "k1")
    fwd = inst["ports"][0]["host"]
    plan = cli.json("instances", "ssh", inst["id"], "--print")
    assert plan["port"] == fwd and plan["host"] == "127.0.0.1" and plan["user"] == "root"
    assert plan["identity"] == str(cli.home / "keys" / "k1.pem")
    # Really exec: a stand-in `ssh` first on PATH records what it was given.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ssh").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SSH_ARGS_FILE"\nexit 7\n')
    (fake / "ssh").chmod(0o755)
    args_file = tmp_path / "args"
    proc = cli("instances", "ssh", inst["id"], "uname", "-r", rc=7,
               env={"PATH": f"{fake}:{os.environ['PATH']}", "SSH_ARGS_FILE": str(args_file)})
    argv = args_file.read_text().split("\n")
    assert argv[argv.index("-p") + 1] == str(fwd) and "root@127.0.0.1" in argv and argv[-3:-1] == ["uname", "-r"]
    assert proc.returncode == 7

    plain = cli.json("instances", "run", "tiny", "--type", "t2.nano")
    assert "no forward for guest port 22" in cli("instances", "ssh", plain["id"], rc=2).stderr


# -- buckets -----------------------------------------------------------------------------------
def test_buckets_end_to_end(cli, server, tmp_path):
    other = server.new_user(f"bo-{server.port}")
    other_cli = Cli(server, other, tmp_path / "other")
    name = f"cli-test-{server.port}"
    made = cli.json("buckets", "mb", name)
    assert made["name"] == name and made["access"] == "private"
    try:
        src = tmp_path / "data.bin"
        src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
        up = cli.json("buckets", "cp", str(src), f"s3://{name}/dir/")
        assert up["destination"] == f"s3://{name}/dir/data.bin" and up["bytes"] == src.stat().st_size
        cli("buckets", "cp", "-", f"s3://{name}/hello.txt", input="hello\n")
        listing = cli.json("buckets", "ls", f"s3://{name}")
        assert listing["prefixes"] == ["dir/"] and [o["key"] for o in listing["objects"]] == ["hello.txt"]
        keys = [o["key"] for o in cli.json("buckets", "ls", "-r", f"s3://{name}")["objects"]]
        assert sorted(keys) == ["dir/data.bin", "hello.txt"]
        assert name in cli("buckets", "ls").stdout

        dst = tmp_path / "back.bin"
        cli("buckets", "cp", f"s3://{name}/dir/data.bin", str(dst))
        assert dst.read_bytes() == src.read_bytes()
        assert cli("buckets", "cp", f"s3://{name}/hello.txt", "-").stdout == "hello\n"

        url = cli("buckets", "presign", f"s3://{name}/hello.txt", "--expires", "60").stdout.strip()
        assert requests.get(url, timeout=10).text == "hello\n"

        # private until shared, then readable by the other account
        assert other_cli("buckets", "ls", f"s3://{name}", rc=1).returncode == 1
        cli("buckets", "share", name, "--with", f"bo-{server.port}", "--level", "read")
        assert other_cli("buckets", "cp", f"s3://{name}/hello.txt", "-").stdout == "hello\n"
        assert other_cli("buckets", "cp", "-", f"s3://{name}/x", input="x", rc=1).returncode == 1
        assert "public-read" in cli("buckets", "share", name, "--public").stdout
        assert requests.get(f"{server.url}/{name}/hello.txt", timeout=10).text == "hello\n"

        assert "BucketNotEmpty" in cli("buckets", "rb", name, rc=1).stderr
    finally:
        cli("buckets", "rb", name, "--force", rc=None)
    assert name not in {b["name"] for b in cli.json("buckets", "ls")["buckets"]}
    assert "NoSuchBucket" in cli("buckets", "cp", f"s3://{name}/hello.txt", "-", rc=1).stderr
