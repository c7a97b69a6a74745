"""The web console in headless Chromium: sign in, launch a tiny container, watch it run,
open its internals, terminate it; wrong secrets, other accounts and forged posts are refused."""
from __future__ import annotations

import base64
import platform
import re
import statistics
import time
import zlib

import pytest
import requests
from playwright.sync_api import expect

from .conftest import Timings, load_ms, shot, sign_in

pytestmark = pytest.mark.integration


def test_wrong_secret_is_refused(page, user):
    page.goto("/ui/instances")
    assert "/ui/login" in page.url  # signed out: every page leads to sign-in
    shot(page, "01-login")
    page.fill("input[name=access_key_id]", user.key_id)
    page.fill("input[name=secret_access_key]", user.secret[:-1] + ("x" if user.secret[-1] != "x" else "y"))
    resp_status = []
    page.on("response", lambda r: resp_status.append(r.status) if r.url.endswith("/ui/login") else None)
    page.click("button:has-text('Sign in')")
    expect(page.locator(".flash.error")).to_contain_text("Wrong access key id or secret")
    assert 401 in resp_status
    page.goto("/ui/instances")
    assert "/ui/login" in page.url
    # an unknown key id is refused the same way
    page.fill("input[name=access_key_id]", "AKIA0000000000000000")
    page.fill("input[name=secret_access_key]", "whatever")
    page.click("button:has-text('Sign in')")
    expect(page.locator(".flash.error")).to_be_visible()


def test_launch_watch_internals_terminate(page, user, server):
    sign_in(page, user)
    expect(page.locator("h1")).to_have_text("Instances")
    shot(page, "02-instances-empty")

    page.select_option("select[name=image]", "tiny")
    page.select_option("select[name=kind]", "container")
    page.select_option("select[name=type]", "t2.nano")
    page.fill("input[name=name]", "web")
    page.fill("input[name=ports]", "80")
    page.fill("textarea[name=user_data]", "#!/bin/sh\necho hello-from-user-data > /tmp/hello\n")
    started = time.monotonic()
    page.click("#launch-button")
    page.wait_for_url(re.compile(r".*/ui/instances/i-[0-9a-f]{17}$"))
    iid = page.url.rsplit("/", 1)[1]
    expect(page.locator("#state")).to_have_text("running", timeout=60000)
    to_running = time.monotonic() - started
    expect(page.locator(".flash.ok")).to_contain_text(f"Launched {iid}")
    fwd = user.ok("GET", f"/instances/{iid}")["ports"][0]
    expect(page.locator("body")).to_contain_text(f"127.0.0.1:{fwd['host']}")

    page.fill("#exec input[name=command]", "uname -r; cat /tmp/hello")
    page.click("#exec button")
    expect(page.locator("#exec-output")).to_contain_text(platform.release())
    expect(page.locator("#exec-output")).to_contain_text("hello-from-user-data")
    shot(page, "03-instance")

    page.click("#internals-link")
    page.wait_for_url(f"**/ui/instances/{iid}/internals")
    layers = page.locator("#layers .layer")
    keys = [layers.nth(i).get_attribute("data-layer") for i in range(layers.count())]
    assert keys[0] == "app" and keys[1] == "api" and keys[-2:] == ["isolation", "kernel"]
    for k in ("dockerd", "containerd", "containerd-shim", "runc"):
        assert k in keys, keys
    pid = user.ok("GET", f"/instances/{iid}/internals")["pid1"]["host_pid"]
    expect(page.locator("[data-layer=app]")).to_contain_text(str(pid))
    expect(page.locator("[data-layer=kernel]")).to_contain_text(platform.release())
    expect(page.locator("[data-layer=isolation]")).to_contain_text("512.0 MiB")  # t2.nano, cgroup-enforced
    shot(page, "04-internals")

    # the list: live state, and how long the page takes to load (navigation to load event)
    for _ in range(5):
        page.goto("/ui/instances")
        Timings.add("instances_page_load_ms", load_ms(page))
    row = page.locator(f"tr[data-id={iid}]")
    expect(row.locator("[data-state]")).to_have_text("running")
    shot(page, "05-instances")

    row.locator("button:has-text('Terminate')").click()
    expect(page.locator(f"tr[data-id={iid}] [data-state]")).to_have_text("terminated")
    assert user.ok("GET", f"/instances/{iid}")["state"] == "terminated"
    Timings.add("launch_to_running_s", to_running * 1000)


def test_state_updates_live_without_reload(page, user, cleanup):
    inst = user.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})
    cleanup.append((user, inst["id"]))
    sign_in(page, user)
    cell = page.locator(f"tr[data-id={inst['id']}] [data-state]")
    expect(cell).to_have_text("running")
    user.ok("POST", f"/instances/{inst['id']}/stop")  # behind the page's back, through the API
    expect(cell).to_have_text("stopped", timeout=15000)  # the poll (and reload) shows it


def test_user_b_never_sees_a(page, server, cleanup):
    a = server.new_user(f"wa-{server.port}")
    b = server.new_user(f"wb-{server.port}")
    inst = a.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano", "name": "a-secret-box"})
    cleanup.append((a, inst["id"]))
    a.ok("POST", "/keys", 201, json={"name": "a-key"})
    sign_in(page, b)
    assert inst["id"] not in page.content() and "a-secret-box" not in page.content()
    assert page.locator("#instances").count() == 0  # B has nothing at all
    for path in (f"/ui/instances/{inst['id']}", f"/ui/instances/{inst['id']}/internals"):
        resp = page.goto(path)
        assert resp.status == 404, path
        expect(page.locator("h1")).to_contain_text("Not found")
        assert "a-secret-box" not in page.content()
    page.goto("/ui/keys")
    assert "a-key" not in page.content()
    # B cannot act on A's instance even with a valid form token of its own
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    resp = page.request.post(f"/ui/instances/{inst['id']}/terminate", form={"csrf": token})
    assert resp.status == 404
    # nor reach the admin pages
    assert page.goto("/ui/accounts").status == 404
    assert a.ok("GET", f"/instances/{inst['id']}")["state"] == "running"


def test_session_cookie_and_csrf(page, user, server):
    sign_in(page, user)
    cookie = next(c for c in page.context.cookies() if c["name"] == "pocketcloud_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
    payload = cookie["value"].lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if cookie["value"].startswith("."):
        raw = zlib.decompress(raw)
    assert user.secret.encode() not in raw and user.key_id.encode() in raw
    # a POST without the form's token is refused, signed in or not
    resp = page.request.post("/ui/instances", form={"image": "tiny"})
    assert resp.status == 400 and "CSRF" in resp.text()
    # a cross-site form post (another origin) is refused even with the token
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    resp = page.request.post("/ui/instances", form={"csrf": token, "image": "tiny"},
                             headers={"Origin": "http://evil.example"})
    assert resp.status == 400
    assert user.ok("GET", "/instances")["instances"] == []
    # the console never leaves the JSON API open to the cookie: /api/v1 still wants keys
    assert requests.get(f"{server.url}/api/v1/instances", timeout=5).status_code == 401
    # sign out ends the session
    page.click("button:has-text('Sign out')")
    page.goto("/ui/keys")
    assert "/ui/login" in page.url


def test_keys_page_shows_the_private_key_once(page, user):
    sign_in(page, user)
    page.click("nav >> text=Key pairs")
    page.fill("form:has(button:has-text('Create')) input[name=name]", "browser-key")
    page.click("button:has-text('Create')")
    expect(page.locator("#private-key")).to_contain_text("BEGIN OPENSSH PRIVATE KEY")
    shot(page, "06-keys")
    page.goto("/ui/keys")
    expect(page.locator("#keys")).to_contain_text("browser-key")
    assert "BEGIN OPENSSH PRIVATE KEY" not in page.content()
    assert [k["name"] for k in user.ok("GET", "/keys")["keys"]] == ["browser-key"]


def test_admin_accounts_and_quotas(page, server):
    sign_in(page, server.admin)
    page.click("nav >> text=Accounts")
    name = f"web-{server.port}"
    page.fill("form:has(button:has-text('Create')) input[name=name]", name)
    page.click("form:has(button:has-text('Create')) button")
    keys = page.locator("#new-account-keys").inner_text()
    key_id = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", keys).group(1)
    secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", keys).group(1)
    assert requests.get(f"{server.url}/api/v1/accounts/me", auth=(key_id, secret), timeout=5).json()["name"] == name
    row = page.locator("#accounts tr", has_text=name)
    row.locator("input[name=max_instances]").fill("7")
    row.locator("input[name=storage_quota_mib]").fill("100")
    row.locator("button:has-text('Save')").click()
    expect(page.locator(".flash.ok")).to_contain_text("7 instances")
    me = requests.get(f"{server.url}/api/v1/accounts/me", auth=(key_id, secret), timeout=5).json()
    assert me["max_instances"] == 7 and me["storage_quota"] == 100 * 1024 * 1024
    shot(page, "07-accounts")
    page.click("nav >> text=System")
    expect(page.locator("body")).to_contain_text("dockerd")
    shot(page, "08-system")
    page.click("nav >> text=Images")
    expect(page.locator("#images")).to_contain_text("tiny")
    shot(page, "09-images")


def test_bucket_upload_and_download(page, user, tmp_path):
    sign_in(page, user)
    page.click("nav >> text=Buckets")
    assert page.locator("#storage-unavailable").count() == 0, "the server has no object storage (cloud.storage)"
    name = f"web-{user.key_id.lower()[-8:]}"
    page.fill("input[name=name]", name)
    page.click("button:has-text('Create')")
    page.wait_for_url(f"**/ui/buckets/{name}")
    src = tmp_path / "notes.txt"
    src.write_bytes(b"pocketcloud notes\n" * 5000)
    page.set_input_files("#upload input[type=file]", str(src))
    page.click("#upload button")
    expect(page.locator("#objects")).to_contain_text("notes.txt")
    shot(page, "10-bucket")
    with page.expect_download() as dl:
        page.click("#objects a:has-text('Download')")
    out = tmp_path / "back.txt"
    dl.value.save_as(out)
    assert out.read_bytes() == src.read_bytes()
    page.click("#objects button:has-text('Share link')")
    url = page.locator("#presigned-url").inner_text().strip()
    assert requests.get(url, timeout=10).content == src.read_bytes()
    page.click("nav >> text=Buckets")
    expect(page.locator("#buckets")).to_contain_text(name)
    shot(page, "11-buckets")
    page.goto(f"/ui/buckets/{name}")
    page.check("input[name=force]")
    page.click("button:has-text('Delete bucket')")
    expect(page.locator(".flash.ok")).to_contain_text(f"Deleted bucket {name}")


def test_vm_internals_picture(page, user, cleanup):
    """The hypervisor stack of a real VM: libvirt, QEMU, KVM or TCG, the host kernel."""
    inst = user.ok("POST", "/instances", 201, json={"image": "tiny", "kind": "vm", "type": "t2.nano"})
    cleanup.append((user, inst["id"]))
    user.wait_state(inst["id"])
    data = user.ok("GET", f"/instances/{inst['id']}/internals")
    sign_in(page, user)
    page.goto(f"/ui/instances/{inst['id']}/internals")
    layers = page.locator("#layers .layer")
    keys = [layers.nth(i).get_attribute("data-layer") for i in range(layers.count())]
    assert keys[0] == "app" and keys[-1] == "kernel", keys
    body = page.locator("#layers").inner_text()
    assert "libvirt" in body and "QEMU" in body.upper()
    assert ("TCG" in body) == (data["hypervisor"]["mode"] == "qemu")
    assert str(data["summary"]["host_pid"]) in body
    assert platform.release() in body and data["kernel"]["guest"] in body
    shot(page, "06-vm-internals")
