"""Stored XSS -> admin takeover (issue 11, item 1), attempted for real in Chromium.

A plain user uploads a web page to a public-read bucket; an admin signed in to the console
opens it. Its script tries everything a page can: read console pages (for a CSRF token)
on its own origin and on the console's, post the account form with and without a token,
blind no-cors posts and a real form submitted into a frame. No console page may be read
and no account may be created."""
from __future__ import annotations

import json
import re

import boto3
import pytest
import requests

from .conftest import shot, sign_in

pytestmark = pytest.mark.integration

ATTACK = """<!doctype html>
<html><head><meta charset="utf-8"><title>cat pictures</title></head>
<body><h1>cat pictures</h1><iframe name="sink" id="sink"></iframe>
<script>
(async function () {
  const R = window.__results = {};
  const CONSOLE = %(console)s;
  async function read(url) {
    try {
      const r = await fetch(url, {credentials: "include"});
      const text = await r.text();
      const m = text.match(/name="csrf" value="([^"]+)"/);
      return {status: r.status, url: r.url, csrf: m ? m[1] : null, console_page: text.includes("pocketcloud")};
    } catch (e) { return {error: String(e)}; }
  }
  async function create(base, csrf, name) {
    try {
      const body = new URLSearchParams({csrf: csrf || "", name: name, role: "admin", max_instances: "5"});
      const r = await fetch(base + "/ui/accounts", {method: "POST", credentials: "include", body: body});
      return {status: r.status, created: (await r.text()).includes(name)};
    } catch (e) { return {error: String(e)}; }
  }
  R.read_here = await read("/ui/accounts");
  R.read_console = await read(CONSOLE + "/ui/accounts");
  R.post_here = await create("", R.read_here.csrf, "pwned-here");
  R.post_console = await create(CONSOLE, R.read_console.csrf, "pwned-console");
  try {
    await fetch(CONSOLE + "/ui/accounts", {method: "POST", mode: "no-cors", credentials: "include",
      body: new URLSearchParams({name: "pwned-blind", role: "admin"})});
    R.blind = "sent";
  } catch (e) { R.blind = String(e); }
  const form = document.createElement("form");
  form.method = "POST"; form.action = CONSOLE + "/ui/accounts"; form.target = "sink";
  for (const [k, v] of [["name", "pwned-form"], ["role", "admin"], ["csrf", R.read_console.csrf || ""]]) {
    const input = document.createElement("input"); input.name = k; input.value = v; form.appendChild(input);
  }
  document.body.appendChild(form);
  const sink = document.getElementById("sink");
  const loaded = new Promise(done => sink.addEventListener("load", done, {once: true}));
  form.submit();
  await Promise.race([loaded, new Promise(done => setTimeout(done, 10000))]);
  try { R.frame = sink.contentDocument.body.innerText.slice(0, 200); } catch (e) { R.frame = "unreadable: " + e.name; }
  window.__done = true;
})();
</script></body></html>
"""


@pytest.fixture
def public_page(server, user):
    """x.html in a public-read bucket of a plain user, uploaded with boto3 as text/html."""
    bucket = f"cats-{server.port}"
    user.ok("POST", "/buckets", 201, json={"name": bucket, "access": "public-read"})
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                      aws_access_key_id=user.key_id, aws_secret_access_key=user.secret)
    html = ATTACK % {"console": json.dumps(server.console_url)}
    s3.put_object(Bucket=bucket, Key="x.html", Body=html.encode(), ContentType="text/html")
    yield f"{server.url}/{bucket}/x.html"
    s3.delete_object(Bucket=bucket, Key="x.html")
    user.ok("DELETE", f"/buckets/{bucket}", 204)


def _account_names(server) -> set[str]:
    return {a["name"] for a in server.admin.ok("GET", "/accounts")["accounts"]}


def test_uploaded_page_cannot_read_or_drive_the_admin_console(page, server, public_page):
    served = requests.get(public_page, timeout=30)
    assert served.headers["Content-Type"].startswith("text/html")  # served as uploaded: bucket-hosted pages work
    assert served.headers["X-Content-Type-Options"] == "nosniff"  # once (a second one would read "nosniff, nosniff")
    assert "sandbox" not in served.headers.get("Content-Security-Policy", "")
    before = _account_names(server)
    sign_in(page, server.admin)
    page.goto(public_page)
    page.wait_for_function("window.__done === true", timeout=60000)
    results = page.evaluate("window.__results")
    shot(page, "xss-attempt")
    print(json.dumps(results, indent=1))
    after = _account_names(server)
    assert after == before, f"the uploaded page created accounts {sorted(after - before)}: {results}"
    for attempt in ("read_here", "read_console"):
        got = results[attempt]
        assert "error" in got or not (got.get("csrf") or got.get("console_page")), (attempt, results)
    for attempt in ("post_here", "post_console"):
        assert not results[attempt].get("created"), (attempt, results)
    assert results["frame"].startswith("unreadable"), results


def test_the_console_trusts_no_url_as_a_script_source(server):
    r = requests.get(f"{server.console_url}/ui/login", timeout=10)
    csp = r.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert re.fullmatch(r"'nonce-[A-Za-z0-9_-]{16,}'", directives["script-src"]), csp
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    nonce = directives["script-src"][len("'nonce-"):-1]
    assert f'nonce="{nonce}"' in r.text  # the console's own script carries it
    # and the API port, where objects are served, has no console to offer
    r = requests.get(f"{server.url}/ui/login", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith(server.console_url)
