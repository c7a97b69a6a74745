"""Container instances end to end through the running server, against the real dockerd."""
from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import pc_containers

pytestmark = pytest.mark.integration

USER_DATA = """#!/bin/sh
mkdir -p /www
echo "hello from user-data on $(hostname)" > /www/index.html
printf '#!/bin/sh\\nhttpd -p 80 -h /www\\n' > /etc/rc.local
chmod +x /etc/rc.local
date >> /var/log/first-boot-count
"""


def curl(server, api, method: str, path: str, data: dict | None = None) -> tuple[int, dict]:
    """The real curl binary, as a student would type it."""
    cmd = ["curl", "-sS", "-u", f"{api.key_id}:{api.secret}", "-X", method, "-w", "\n%{http_code}",
           f"{server.url}/api/v1{path}"]
    if data is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(data)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), (json.loads(body) if body.strip() else {})


def wait_http(url: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, timeout=2)
            if r.ok:
                return r.text
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


def test_curl_lifecycle_with_port_forward_and_user_data(server, user, docker_client):
    status, inst = curl(server, user, "POST", "/instances", {
        "name": "web", "image": "tiny", "type": "t2.nano", "ports": [{"guest": 80}],
        "user_data": USER_DATA, "tags": {"course": "cloud-101"}})
    assert status == 201, inst
    iid = inst["id"]
    try:
        assert iid.startswith("i-") and len(iid) == 19
        assert inst["state"] == "running" and inst["kind"] == "container"
        fwd = inst["ports"][0]
        assert fwd["guest"] == 80 and fwd["host_ip"] == "127.0.0.1" and 1024 <= fwd["host"] <= 65535
        page = f"http://127.0.0.1:{fwd['host']}/"
        assert "hello from user-data on web" in wait_http(page)

        status, res = curl(server, user, "POST", f"/instances/{iid}/exec", {"command": "cat /etc/os-release; exit 3"})
        assert status == 200 and res["exit_code"] == 3 and "pocketcloud tiny" in res["stdout"]

        # outlives a dockerd without live-restore restarting; one stopped through pocketcloud stays stopped
        assert docker_client.containers.get(f"pc-{iid}").attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        status, stopped = curl(server, user, "POST", f"/instances/{iid}/stop")
        assert status == 200 and stopped["state"] == "stopped" and stopped["previous_state"] == "running"
        assert docker_client.containers.get(f"pc-{iid}").status == "exited"
        with pytest.raises(requests.RequestException):
            requests.get(page, timeout=2)

        status, started = curl(server, user, "POST", f"/instances/{iid}/start")
        assert status == 200 and started["state"] == "running"
        assert started["ports"][0]["host"] == fwd["host"], "a forward keeps its host port across stop/start"
        assert "hello from user-data" in wait_http(page)

        status, rebooted = curl(server, user, "POST", f"/instances/{iid}/reboot")
        assert status == 200 and rebooted["state"] == "running"
        assert "hello from user-data" in wait_http(page)
        # user-data ran once, though the instance booted three times
        res = user.ok("POST", f"/instances/{iid}/exec", json={"command": "wc -l < /var/log/first-boot-count"})
        assert res["stdout"].strip() == "1"

        status, console = 0, requests.get(f"{server.url}/api/v1/instances/{iid}/console",
                                          auth=(user.key_id, user.secret), timeout=30)
        assert console.status_code == 200
        assert console.text.count("pocketcloud-init: ready") == 3
        assert "running user-data" in console.text

        listed = user.ok("GET", "/instances", params={"tag": "course=cloud-101"})["instances"]
        assert [i["id"] for i in listed] == [iid]
    finally:
        status, gone = curl(server, user, "DELETE", f"/instances/{iid}")
    assert status == 200 and gone["state"] == "terminated"
    assert not [c for c in pc_containers(docker_client, server) if iid in c.name]
    # terminated instances stay listed (for an hour), as on EC2
    assert user.ok("GET", f"/instances/{iid}")["state"] == "terminated"
    # and cannot come back
    status, err = curl(server, user, "POST", f"/instances/{iid}/start")
    assert status == 409 and err["error"]["code"] == "IncorrectInstanceState"


@pytest.mark.parametrize("itype,vcpus,mib", [("t2.nano", 1, 512), ("t2.medium", 2, 4096)])
def test_instance_type_limits_are_enforced_by_cgroups(server, user, cleanup, itype, vcpus, mib):
    inst = user.ok("POST", "/instances", 201, json={"image": "tiny", "type": itype})
    cleanup.append((user, inst["id"]))
    script = ("if [ -f /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max; "
              "else cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
              "echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi")
    out = user.ok("POST", f"/instances/{inst['id']}/exec", json={"command": script})["stdout"].split("\n")
    assert int(out[0]) == mib * 1024 * 1024
    quota, period = out[1].split()
    assert int(quota) == vcpus * int(period)


def test_another_account_cannot_see_or_touch_an_instance(server, cleanup):
    a = server.new_user("alice-" + str(server.port))
    b = server.new_user("bob-" + str(server.port))
    inst = a.ok("POST", "/instances", 201, json={"image": "tiny", "name": "private"})
    iid = inst["id"]
    cleanup.append((a, iid))
    assert b.ok("GET", "/instances")["instances"] == []
    for method, path in [("GET", f"/instances/{iid}"), ("POST", f"/instances/{iid}/stop"),
                         ("POST", f"/instances/{iid}/reboot"), ("DELETE", f"/instances/{iid}"),
                         ("GET", f"/instances/{iid}/console"), ("POST", f"/instances/{iid}/exec")]:
        status, body = b(method, path, json={"command": "true"} if path.endswith("exec") else None)
        assert status == 404, (method, path, status, body)
        assert body["error"]["code"] == "InvalidInstanceID.NotFound"
        assert "does not exist" in body["error"]["message"]
    assert a.ok("GET", f"/instances/{iid}")["state"] == "running"
    status, _ = b("GET", "/instances", params={"all": "1"})
    assert status == 403


def test_concurrent_creates_restart_and_reconcile(server, user, docker_client, cleanup):
    def create(n):
        return user("POST", "/instances", json={"image": "tiny", "type": "t2.nano", "name": f"c{n}",
                                                "ports": [{"guest": 80}]})

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(create, range(10)))
    for status, body in results:
        assert status == 201, body
        cleanup.append((user, body["id"]))
    ids = [b["id"] for _, b in results]
    ports = [b["ports"][0]["host"] for _, b in results]
    assert len(set(ids)) == 10 and len(set(ports)) == 10

    # Behind the server's back: remove one container and stop another, while it is down.
    server.stop()
    docker_client.containers.get(f"pc-{ids[0]}").remove(force=True)
    docker_client.containers.get(f"pc-{ids[1]}").stop(timeout=5)
    server.start()

    after = {i["id"]: i for i in user.ok("GET", "/instances")["instances"]}
    assert set(ids) <= set(after)
    assert after[ids[0]]["state"] == "terminated"
    assert "removed outside pocketcloud" in after[ids[0]]["state_reason"]
    assert after[ids[1]]["state"] == "stopped"
    assert all(after[i]["state"] == "running" for i in ids[2:])
    assert after[ids[5]]["ports"][0]["host"] == ports[5]
    assert user.ok("POST", f"/instances/{ids[1]}/start")["state"] == "running"


def test_admin_registers_a_docker_image_by_reference(server, user):
    """The registry path (`POST /images` with a Docker reference): with no registry reachable
    here, a reference dockerd already holds is registered without a pull."""
    admin = server.admin
    ref = next(i for i in admin.ok("GET", "/images")["images"] if i["name"] == "tiny")["kinds"]["container"]["ref"]
    status, body = user("POST", "/images", json={"name": "mine", "source": ref})
    assert status == 403
    status, body = admin("POST", "/images", json={"name": "bad name", "source": ref})
    assert status == 400
    made = admin.ok("POST", "/images", 201, json={"name": "tiny-alias", "source": ref})
    assert made["kinds"]["container"]["source"] == f"docker:{ref}"
    inst = admin.ok("POST", "/instances", 201, json={"image": "tiny-alias"})
    try:
        assert admin.ok("POST", f"/instances/{inst['id']}/exec", json={"command": "cat /etc/os-release"})["exit_code"] == 0
    finally:
        admin.ok("DELETE", f"/instances/{inst['id']}")
        admin.ok("DELETE", "/images/tiny-alias", 204)
    assert "tiny-alias" not in [i["name"] for i in admin.ok("GET", "/images")["images"]]
