"""Every bad request gets a clear 4xx in JSON and changes nothing."""
from __future__ import annotations

import pytest
import requests

from .conftest import pc_containers

pytestmark = pytest.mark.integration

BAD_CREATES = [
    ({"image": "no-such-image"}, 404, "InvalidAMIID.NotFound"),
    ({"image": "../../etc"}, 400, "InvalidAMIID.Malformed"),
    ({"image": "tiny", "type": "t9.gigantic"}, 400, "InvalidInstanceType"),
    ({"image": "tiny", "kind": "unikernel"}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "name": "bad name; rm -rf /"}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "name": "x" * 80}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "ports": [{"guest": 0}]}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "ports": [{"guest": 80, "host": 80}]}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "ports": [{"guest": 80}, {"guest": 80}]}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "ports": "80"}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "tags": ["a"]}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "tags": {"aws:reserved": "x"}}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "user_data": "x" * 20000}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "user_data": 42}, 400, "InvalidParameterValue"),
    ({"image": "tiny", "surprise": 1}, 400, "InvalidParameterValue"),
    ({"name": "no-image"}, 400, "MissingParameter"),
]


def snapshot(server, api, docker_client):
    return (sorted(i["id"] for i in api.ok("GET", "/instances")["instances"]),
            sorted(c.id for c in pc_containers(docker_client, server)))


@pytest.mark.parametrize("payload,status,code", BAD_CREATES)
def test_bad_create_is_refused_and_changes_nothing(server, user, docker_client, payload, status, code):
    before = snapshot(server, user, docker_client)
    got, body = user("POST", "/instances", json=payload)
    assert (got, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"]
    assert snapshot(server, user, docker_client) == before


def test_malformed_and_oversized_bodies(server, user, docker_client):
    before = snapshot(server, user, docker_client)
    url, auth, as_json = f"{server.url}/api/v1/instances", (user.key_id, user.secret), {"Content-Type": "application/json"}
    r = requests.post(url, data="{not json", auth=auth, headers=as_json)
    assert r.status_code == 400 and r.json()["error"]["code"] == "MalformedJSON"
    r = requests.post(url, data="[1, 2]", auth=auth, headers=as_json)
    assert r.status_code == 400
    big = '{"image": "tiny", "user_data": "' + "x" * (2 * 1024 * 1024) + '"}'
    r = requests.post(url, data=big, auth=auth, headers=as_json)
    assert r.status_code == 413 and r.json()["error"]["code"] == "RequestTooLarge"
    assert snapshot(server, user, docker_client) == before


@pytest.mark.parametrize("ctype", [None, "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"])
def test_json_only_with_a_json_content_type(server, user, docker_client, ctype):
    """A browser form can post any body across origins without asking; JSON it cannot.
    So the REST API reads nothing that does not say it is JSON."""
    before = snapshot(server, user, docker_client)
    headers = {"Content-Type": ctype} if ctype else {}
    r = requests.post(f"{server.url}/api/v1/instances", data='{"image": "tiny"}', headers=headers,
                      auth=(user.key_id, user.secret))
    assert r.status_code == 415 and r.json()["error"]["code"] == "UnsupportedMediaType", r.text
    assert "application/json" in r.json()["error"]["message"]
    status, body = user("POST", "/keys", data="name=k1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415, body
    assert user.ok("GET", "/keys")["keys"] == []
    assert snapshot(server, user, docker_client) == before


def test_credentials_are_checked(server, user):
    url = f"{server.url}/api/v1/instances"
    r = requests.get(url)
    assert r.status_code == 401 and r.json()["error"]["code"] == "AuthFailure"
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.get(url, auth=(user.key_id, "wrong-secret"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "SignatureDoesNotMatch"
    r = requests.get(url, auth=("AKIANOTAREALKEY00000", "x"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAccessKeyId"
    r = requests.get(f"{server.url}/api/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_users_cannot_create_accounts(server, user):
    status, body = user("POST", "/accounts", json={"name": "mallory"})
    assert status == 403 and body["error"]["code"] == "UnauthorizedOperation"
    status, body = server.admin("POST", "/accounts", json={"name": "Bad Name"})
    assert status == 400


def test_unknown_routes_and_ids(server, user):
    status, body = user("GET", "/instances/i-123")
    assert status == 400 and body["error"]["code"] == "InvalidInstanceID.Malformed"
    status, body = user("GET", "/instances/i-0123456789abcdef0")
    assert status == 404 and body["error"]["code"] == "InvalidInstanceID.NotFound"
    status, body = user("GET", "/nope")
    assert status == 404 and body["error"]["code"] == "NotFound"
    status, body = user("POST", "/instances/i-0123456789abcdef0/fly")
    assert status == 400 and body["error"]["code"] == "InvalidAction"


def test_requested_host_port_in_use_is_refused(server, user, docker_client, cleanup):
    first = user.ok("POST", "/instances", 201, json={"image": "tiny", "ports": [{"guest": 80}]})
    cleanup.append((user, first["id"]))
    taken = first["ports"][0]["host"]
    before = snapshot(server, user, docker_client)
    status, body = user("POST", "/instances", json={"image": "tiny", "ports": [{"guest": 80, "host": taken}]})
    assert status == 409 and body["error"]["code"] == "PortInUse"
    assert snapshot(server, user, docker_client) == before


def test_illegal_transitions(server, user, cleanup):
    inst = user.ok("POST", "/instances", 201, json={"image": "tiny"})
    cleanup.append((user, inst["id"]))
    iid = inst["id"]
    user.ok("POST", f"/instances/{iid}/stop")
    status, body = user("POST", f"/instances/{iid}/reboot")
    assert status == 409 and body["error"]["code"] == "IncorrectInstanceState"
    status, body = user("POST", f"/instances/{iid}/exec", json={"command": "true"})
    assert status == 409
    assert user.ok("GET", f"/instances/{iid}")["state"] == "stopped"
    user.ok("DELETE", f"/instances/{iid}")
    for action in ("start", "stop", "reboot"):
        status, body = user("POST", f"/instances/{iid}/{action}")
        assert status == 409 and body["error"]["code"] == "IncorrectInstanceState", (action, body)


def test_instance_quota(server):
    capped = server.new_user(f"capped-{server.port}", max_instances=1)
    first = capped.ok("POST", "/instances", 201, json={"image": "tiny"})
    try:
        status, body = capped("POST", "/instances", json={"image": "tiny"})
        assert status == 403 and body["error"]["code"] == "InstanceLimitExceeded"
        assert len(capped.ok("GET", "/instances")["instances"]) == 1
    finally:
        capped.ok("DELETE", f"/instances/{first['id']}")


def test_key_pairs_over_rest(server, user):
    created = user.ok("POST", "/keys", 201, json={"name": "laptop"})
    assert created["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert "private_key" not in user.ok("GET", "/keys")["keys"][0]
    status, body = user("POST", "/keys", json={"name": "laptop"})
    assert status == 409 and body["error"]["code"] == "InvalidKeyPair.Duplicate"
    for bad in ["ssh-rsa", "ssh-ed25519 AAAA\nssh-rsa AAAA", "ssh-ed25519 !!!notbase64", "rm -rf /", 7]:
        status, body = user("POST", "/keys", json={"name": "bad", "public_key": bad})
        assert status == 400 and body["error"]["code"] == "InvalidKey.Format", (bad, body)
    assert [k["name"] for k in user.ok("GET", "/keys")["keys"]] == ["laptop"]
    status, body = user("POST", "/instances", json={"image": "tiny", "key_name": "nope"})
    assert status == 404 and body["error"]["code"] == "InvalidKeyPair.NotFound"
    user.ok("DELETE", "/keys/laptop", 204)
    status, _ = user("DELETE", "/keys/laptop")
    assert status == 404
