"""The console's Volumes page in headless Chromium: create a volume, attach it to my running
container (the instance really sees it), open its internals, snapshot it, a refused action
shown as a flash error; another account gets 404s for the page and every action, with its own
valid form token, and the volume is unchanged; then detach, delete, delete the snapshot."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import shot, sign_in

pytestmark = pytest.mark.integration


def sign_out(page) -> None:
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/ui/login**")


def test_volumes_page_create_attach_snapshot_detach_delete(page, server):
    a = server.new_user(f"va-{server.port}")
    b = server.new_user(f"vb-{server.port}")
    inst = a.ok("POST", "/instances", 201, json={"image": "tiny", "kind": "container", "name": "vol-box"})
    vid = None
    try:
        sign_in(page, a)
        page.click("nav >> text=Volumes")
        root = page.locator("#volumes tr", has_text=inst["id"])  # the instance's own disk, listed as EC2 does
        expect(root).to_contain_text("root")
        expect(root).to_contain_text("goes with its instance")
        assert root.locator("button").count() == 0

        page.fill("#create-volume input[name=size]", "0")
        page.click("#create-volume button")
        expect(page.locator(".flash.error")).to_contain_text("InvalidParameterValue")
        assert [v for v in a.ok("GET", "/volumes")["volumes"] if not v["root"]] == []
        page.fill("#create-volume input[name=size]", "1")
        page.click("#create-volume button")
        expect(page.locator(".flash.ok")).to_contain_text("Created volume vol-")
        vid = re.search(r"vol-[0-9a-f]+", page.locator(".flash.ok").inner_text()).group(0)
        row = page.locator(f"#volumes tr[data-id={vid}]")
        expect(row.locator("[data-state]")).to_have_text("available")

        row.locator("select[name=instance_id]").select_option(inst["id"])
        row.locator("button:has-text('Attach')").click()
        expect(page.locator(".flash.ok")).to_contain_text(f"to {inst['id']} as /dev/sdf; the instance sees /volumes/sdf")
        expect(row.locator("[data-state]")).to_have_text("in-use")
        expect(row.locator("[data-attachment]")).to_contain_text(inst["id"])
        res = a.ok("POST", f"/instances/{inst['id']}/exec", json={"command": "grep ' /volumes/sdf ' /proc/mounts"})
        assert " ext4 " in res["stdout"]
        shot(page, "20-volumes")

        # the same device again, on another volume: refused, shown as the other pages show errors
        other = a.ok("POST", "/volumes", 201, json={"size": 1})["id"]
        page.reload()
        row2 = page.locator(f"#volumes tr[data-id={other}]")
        row2.locator("select[name=instance_id]").select_option(inst["id"])
        row2.locator("button:has-text('Attach')").click()
        expect(page.locator(".flash.error")).to_contain_text("already in use")
        assert a.ok("GET", f"/volumes/{other}")["state"] == "available"
        a.ok("DELETE", f"/volumes/{other}", 204)

        page.click(f"#volumes a:has-text('{vid}')")
        expect(page.locator("#host-side")).to_contain_text(f"{vid}.qcow2")
        expect(page.locator("#engine-side")).to_contain_text("/dev/loop")
        expect(page.locator("#guest-side")).to_contain_text("/volumes/sdf")
        shot(page, "21-volume-internals")

        page.click("nav >> text=Volumes")
        page.locator(f"#volumes tr[data-id={vid}] button:has-text('Snapshot')").click()
        expect(page.locator(".flash.ok")).to_contain_text(f"of {vid}")
        snap = re.search(r"snap-[0-9a-f]+", page.locator(".flash.ok").inner_text()).group(0)
        expect(page.locator("#snapshots")).to_contain_text(snap)
        expect(page.locator(f"#volumes tr[data-id={vid}] button:has-text('Delete')")).to_be_disabled()
        sign_out(page)

        # another account: nothing shown, every action a 404 even with its own valid token
        sign_in(page, b)
        page.goto("/ui/volumes")
        assert vid not in page.content() and snap not in page.content()
        assert page.goto(f"/ui/volumes/{vid}").status == 404
        token = page.locator("input[name=csrf]").first.get_attribute("value")
        b_inst = b.ok("POST", "/instances", 201, json={"image": "tiny", "kind": "container"})
        try:
            for path, form in ((f"/ui/volumes/{vid}/detach", {}), (f"/ui/volumes/{vid}/delete", {}),
                               (f"/ui/volumes/{vid}/snapshot", {}), (f"/ui/snapshots/{snap}/delete", {}),
                               (f"/ui/volumes/{vid}/attach", {"instance_id": b_inst["id"], "device": "/dev/sdg"})):
                assert page.request.post(path, form={"csrf": token, **form}).status == 404, path
        finally:
            b.ok("DELETE", f"/instances/{b_inst['id']}")
        got = a.ok("GET", f"/volumes/{vid}")
        assert (got["state"], got["instance_id"], got["device"]) == ("in-use", inst["id"], "/dev/sdf")
        assert [s["id"] for s in a.ok("GET", "/snapshots")["snapshots"]] == [snap]
        sign_out(page)

        sign_in(page, a)
        page.goto("/ui/volumes")
        page.locator(f"#volumes tr[data-id={vid}] button:has-text('Detach')").click()
        expect(page.locator(".flash.ok")).to_contain_text(f"Detached {vid}")
        expect(page.locator(f"#volumes tr[data-id={vid}] [data-state]")).to_have_text("available")
        page.locator(f"#volumes tr[data-id={vid}] button:has-text('Delete')").click()
        expect(page.locator(".flash.ok")).to_contain_text(f"Deleted volume {vid}")
        page.locator(f"#snapshots tr[data-id={snap}] button:has-text('Delete')").click()
        expect(page.locator(".flash.ok")).to_contain_text(f"Deleted snapshot {snap}")
        assert [v for v in a.ok("GET", "/volumes")["volumes"] if not v["root"]] == []
        assert a.ok("GET", "/snapshots")["snapshots"] == []
        vid = None
    finally:
        a("DELETE", f"/instances/{inst['id']}")
        if vid:
            a("DELETE", f"/volumes/{vid}")
