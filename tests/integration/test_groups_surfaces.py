"""Groups through pocketcloud's own surfaces: REST under /api/v1, the console pages, the CLI
(`groups ...` and `lab cattle`) against the running server."""
from __future__ import annotations

import re

import pytest
import requests

from .asg import wait
from .test_cli import Cli

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(server, user, tmp_path):
    yield Cli(server, user, tmp_path / "cli-home")
    for g in user.ok("GET", "/groups")["groups"]:  # whatever a failed test left
        user("DELETE", f"/groups/{g['name']}?force=true")
    wait("groups deleted", lambda: user.ok("GET", "/groups")["groups"] == [], 120)


def in_service(api, name: str) -> list[str]:
    g = api.ok("GET", f"/groups/{name}")
    return [m["id"] for m in g["members"] if m["lifecycle"] == "InService" and m["state"] == "running"]


def console(server, api) -> tuple[requests.Session, str]:
    s = requests.Session()
    page = s.get(f"{server.console_url}/ui/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = s.post(f"{server.console_url}/ui/login", data={"csrf": token, "access_key_id": api.key_id,
                                               "secret_access_key": api.secret}, allow_redirects=False)
    assert r.status_code == 302, r.text
    token = re.search(r'name="csrf" value="([^"]+)"', s.get(f"{server.console_url}/ui/groups").text).group(1)
    return s, token


def test_rest_console_and_explain(server, user):
    tpl = user.ok("POST", "/launch-templates", 201, json={"name": "rest", "image": "tiny", "kind": "container",
                                                          "type": "t2.nano", "tags": {"app": "rest"}})
    assert tpl["image"] == "tiny" and tpl["kind"] == "container" and tpl["image_id"].startswith("ami-")
    status, body = user("POST", "/groups", json={"name": "rest", "launch_template": {"name": "rest"},
                                                 "min": 3, "max": 1})
    assert status == 400 and body["error"]["code"] == "ValidationError"
    g = user.ok("POST", "/groups", 201, json={"name": "rest", "launch_template": {"name": "rest"}, "min": 1, "max": 3,
                                              "desired": 2, "zones": ["a", "b"]})
    assert g["zones"] == ["us-east-1a", "us-east-1b"] and g["desired"] == 2
    members = wait("two in service", lambda: len(ids := in_service(user, "rest")) == 2 and ids)
    pet = user.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano", "name": "pet"})
    try:
        why = user.ok("GET", f"/instances/{pet['id']}/group")
        assert why["role"] == "pet" and why["group"] is None and "nobody replaces it" in why["why"]
        why = user.ok("GET", f"/instances/{members[0]}/group")
        assert why["role"] == "cattle" and why["group"] == "rest"
        other = server.new_user(f"grp-other-{server.port}")
        assert other("GET", "/groups/rest")[0] == 404 and other("PATCH", "/groups/rest", json={"desired": 1})[0] == 404
        assert other.ok("GET", "/groups")["groups"] == []

        s, token = console(server, user)
        page = s.get(f"{server.console_url}/ui/groups/rest").text
        assert all(m in page for m in members) and "Launching a new EC2 instance" in page
        r = s.post(f"{server.console_url}/ui/groups/rest/capacity", data={"csrf": token, "min": "1", "desired": "3",
                                                                 "max": "3"})
        assert r.status_code == 200 and "desired 3" in r.text
        wait("three in service", lambda: len(in_service(user, "rest")) == 3)
        r = s.post(f"{server.console_url}/ui/groups/rest/capacity", data={"csrf": token, "desired": "9"})
        assert "Desired capacity:9 must be between" in r.text and user.ok("GET", "/groups/rest")["desired"] == 3
        r = s.post(f"{server.console_url}/ui/groups/rest/capacity", data={"csrf": "forged", "desired": "1"})
        assert r.status_code == 400 and user.ok("GET", "/groups/rest")["desired"] == 3
        theirs, _ = console(server, other)
        assert theirs.get(f"{server.console_url}/ui/groups/rest").status_code == 404
        assert "rest" in s.get(f"{server.console_url}/ui/groups").text

        acts = user.ok("GET", "/groups/rest/activities?limit=2")["activities"]
        assert len(acts) == 2 and acts[0]["start"] >= acts[1]["start"]
        user.ok("PATCH", "/groups/rest", json={"desired": 1})
        wait("one in service", lambda: len(in_service(user, "rest")) == 1 and
             len(user.ok("GET", "/groups/rest")["members"]) == 1)
    finally:
        user("DELETE", f"/instances/{pet['id']}")
        user("DELETE", "/groups/rest?force=true")
        wait("the group gone", lambda: user.ok("GET", "/groups")["groups"] == [])
        user.ok("DELETE", "/launch-templates/rest", 204)


def test_cli_groups_and_lab_cattle(cli, tmp_path):
    out = cli.json("groups", "create", "herd", "--min", "1", "--max", "3", "--desired", "2", "--zones", "a,b")
    assert out["name"] == "herd" and out["zones"] == ["us-east-1a", "us-east-1b"]
    wait("two in service", lambda: cli.json("groups", "show", "herd")["in_service"] == 2)
    listing = cli("groups", "ls").stdout
    assert re.search(r"^herd\s+2\s+2\s+1\s+3\s+active\s+a,b$", listing, re.M), listing
    assert cli.json("groups", "set-desired", "herd", "3")["desired"] == 3
    wait("three in service", lambda: cli.json("groups", "show", "herd")["in_service"] == 3)
    acts = cli("groups", "activities", "herd", "--limit", "1").stdout
    assert "Launching a new EC2 instance" in acts and "increasing the capacity from 2 to 3" in acts
    bad = cli("groups", "set-desired", "herd", "7", rc=1)
    assert "Desired capacity:7 must be between the specified min size:1 and max size:3" in bad.stderr
    cli("groups", "rm", "herd", rc=1)  # members left, no --force: ResourceInUse
    cli("groups", "rm", "herd", "--force")
    assert cli.json("groups", "ls")["groups"] == []

    res = cli.json("lab", "cattle", "--kind", "container", "--out", str(tmp_path / "lab"), timeout=300)
    tl = res["timeline"]
    assert 0 < tl["cattle_detected_s"] <= tl["replacement_running_s"] and tl["replacement"]  # order, not speed
    assert tl["pet_seen_down_s"] is not None and tl["pet_back"] is False
    assert res["pet_explained"]["role"] == "pet" and res["victim_explained"]["replaced_by"] == tl["replacement"]
    png = (tmp_path / "lab" / "cattle-container.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    report = (tmp_path / "lab" / "cattle-container.md").read_text()
    assert "## Why the pet stayed dead" in report and tl["replacement"] in report
    assert cli.json("groups", "ls")["groups"] == []  # the lab cleaned up
