"""Access keys and account disable in the console: a secret shown once, a session that ends
when its key is deactivated or its account disabled."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.integration.cloud import Api

from .conftest import shot, sign_in

pytestmark = pytest.mark.integration


def test_rotate_a_key_in_the_console(page, user, server):
    sign_in(page, user)
    page.click("nav >> text=Access keys")
    expect(page.locator("#access-keys")).to_contain_text(user.key_id)
    expect(page.locator(f"tr[data-key={user.key_id}]")).to_contain_text("this session")
    page.click("button:has-text('Create access key')")
    values = page.locator("#new-access-key-values").inner_text()
    key_id = values.split("AWS_ACCESS_KEY_ID=")[1].split()[0]
    secret = values.split("AWS_SECRET_ACCESS_KEY=")[1].split()[0]
    assert Api(server.url, key_id, secret).ok("GET", "/accounts/me")["id"] == user.ok("GET", "/accounts/me")["id"]
    shot(page, "access-keys-created")
    expect(page.locator("button:has-text('Create access key')")).to_be_disabled()  # two is the limit
    page.goto("/ui/access-keys")
    assert secret not in page.content()
    # deactivating the key this session signed in with ends the session
    page.click(f"tr[data-key={user.key_id}] button:has-text('Deactivate')")
    page.goto("/ui/instances")
    assert "/ui/login" in page.url
    assert user("GET", "/accounts/me")[0] == 401
    new = Api(server.url, key_id, secret)
    new.ok("PATCH", f"/access-keys/{user.key_id}", json={"status": "Active"})
    new.ok("DELETE", f"/access-keys/{key_id}", 204)


def test_disabling_an_account_ends_its_sessions(browser, server, user):
    name = user.ok("GET", "/accounts/me")["name"]
    users_ctx = browser.new_context(base_url=server.console_url)
    admins_ctx = browser.new_context(base_url=server.console_url)
    try:
        theirs = users_ctx.new_page()
        sign_in(theirs, user)
        admin = admins_ctx.new_page()
        admin.on("dialog", lambda d: d.accept())
        sign_in(admin, server.admin)
        admin.goto("/ui/accounts")
        admin.click(f"tr[data-account={name}] button:has-text('Disable')")
        expect(admin.locator(".flash.ok")).to_contain_text(f"{name} is now disabled")
        expect(admin.locator(f"tr[data-account={name}]")).to_contain_text("disabled")
        theirs.goto("/ui/instances")
        assert "/ui/login" in theirs.url
        admin.click(f"tr[data-account={name}] button:has-text('Enable')")
        assert user("GET", "/accounts/me")[0] == 200
        # the admin's own row offers no Disable button
        admin_name = server.admin.ok("GET", "/accounts/me")["name"]
        assert admin.locator(f"tr[data-account={admin_name}] button:has-text('Disable')").count() == 0
    finally:
        users_ctx.close()
        admins_ctx.close()
