"""The console's first page offers the tour; the tour launches tiny as a container and as a
VM, shows progress while the VM starts, compares the two (different kernels) and cleans up.
Errors say what to do next."""
from __future__ import annotations

import platform
import re

import pytest
from playwright.sync_api import expect

from .conftest import shot, sign_in

pytestmark = pytest.mark.integration


@pytest.fixture
def tour_user(user):
    yield user
    for inst in user.ok("GET", "/instances")["instances"]:  # whatever a failed run left
        if inst["state"] != "terminated":
            user("DELETE", f"/instances/{inst['id']}")


def test_the_first_page_offers_the_tour_and_the_tour_runs(page, tour_user):
    sign_in(page, tour_user)
    expect(page.locator("#tour-offer")).to_be_visible()
    page.click("#tour-link")
    page.wait_for_url("**/ui/tour")
    # the accelerator and why, once the server knows (a new cloud first probes KVM)
    expect(page.locator("#tour-hypervisor")).to_contain_text(re.compile(r"(emulation|virtualization)\): "),
                                                             timeout=60000)
    expect(page.locator("#step-compare button")).to_be_disabled()

    page.click("#tour-container")
    page.wait_for_url("**/ui/tour#step-container")
    expect(page.locator("#step-container [data-state]")).to_have_text("running", timeout=60000)

    # While the server starts the VM the form says so and counts seconds. A pending form
    # post hides the page from the test, so the first submit is held in the page, the note
    # checked, then the form sent.
    page.evaluate("() => document.addEventListener('submit', ev => { if (!window.__held) "
                  "{ window.__held = true; ev.preventDefault(); } })")
    page.click("#tour-vm")
    expect(page.locator("#step-vm .progress")).to_contain_text("Launching the VM")
    shot(page, "20-tour-vm-launching")
    with page.expect_navigation(timeout=300000):
        page.evaluate("() => document.querySelector('#tour-vm').form.submit()")
    expect(page.locator("#step-vm [data-state]")).to_have_text("running", timeout=300000)

    # The guest answers commands a moment after QEMU runs: compare until both kernels show.
    kernel_row = page.locator("#tour-comparison tr", has_text="kernel (uname -r inside)")
    for _ in range(30):
        with page.expect_navigation(timeout=120000):
            page.click("#tour-compare", no_wait_after=True)
        if kernel_row.count() and "cloud-amd64" in kernel_row.inner_text():
            break
        page.wait_for_timeout(2000)
    cells = kernel_row.locator("td")
    assert cells.nth(1).inner_text() == platform.release()
    assert cells.nth(2).inner_text().endswith("-cloud-amd64") and cells.nth(2).inner_text() != platform.release()
    shot(page, "21-tour-compared")

    page.click("#tour-cleanup")
    expect(page.locator(".flash.ok")).to_contain_text("Terminated")
    expect(page.locator("#tour-cleanup")).to_be_disabled()
    states = {i["name"]: i["state"] for i in tour_user.ok("GET", "/instances")["instances"]}
    assert states == {"tour-container": "terminated", "tour-vm": "terminated"}, states


def test_errors_in_the_console_say_what_to_do_next(page, user):
    sign_in(page, user)
    page.goto("/ui/instances/i-0123456789abcdef0")
    expect(page.locator(".next-step")).to_contain_text("Instances page lists yours")
    page.goto("/ui/instances")
    page.select_option("select[name=image]", "tiny")
    page.fill("input[name=ports]", "99999")
    page.click("#launch-button")
    expect(page.locator(".flash.error")).to_contain_text("Correct the value")
