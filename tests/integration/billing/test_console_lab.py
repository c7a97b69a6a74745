"""The console's billing page (signed in, CSRF-checked forms) and `pocketcloud lab cost`."""
from __future__ import annotations

import re

import pytest
import requests

from tests.integration.test_cli import Cli

pytestmark = pytest.mark.integration


def signed_in(server, api) -> tuple[requests.Session, str]:
    s = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', s.get(server.url + "/ui/login").text).group(1)
    r = s.post(server.url + "/ui/login", data={"csrf": csrf, "access_key_id": api.key_id,
                                              "secret_access_key": api.secret})
    assert r.status_code == 200 and "/ui/login" not in r.url
    return s, csrf


def test_the_billing_page_charts_costs_and_manages_budgets(bserver, buser):
    inst = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.micro"})
    try:
        s, _ = signed_in(bserver, buser)
        page = s.get(bserver.url + "/ui/billing")
        assert page.status_code == 200 and "<svg" in page.text and "cost per period by service" in page.text
        assert inst["id"] in page.text, "top resources and paid-for vs used list the running instance"
        assert "Content-Security-Policy" in page.headers and "style=" not in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = s.post(bserver.url + "/ui/billing/budgets", data={"csrf": csrf, "name": "web", "limit": "-1"})
        assert "positive number" in r.text and "InvalidParameterException" in r.text
        r = s.post(bserver.url + "/ui/billing/budgets", data={"csrf": csrf, "name": "web", "limit": "0.01",
                                                              "threshold": "10"})
        assert "Budget web created." in r.text
        assert [b["BudgetName"] for b in buser.ok("GET", "/billing/budgets")["budgets"]] == ["web"]
        assert s.post(bserver.url + "/ui/billing/budgets/web/delete", data={"csrf": "forged"}).status_code == 400
        r = s.post(bserver.url + "/ui/billing/budgets/web/delete", data={"csrf": csrf})
        assert "Budget web deleted." in r.text and buser.ok("GET", "/billing/budgets")["budgets"] == []
        assert requests.get(bserver.url + "/ui/billing", allow_redirects=False).status_code == 302, "signed out"
    finally:
        buser("DELETE", f"/instances/{inst['id']}")


def test_lab_cost_measures_a_real_run_and_compares_a_month(bserver, buser, tmp_path):
    cli = Cli(bserver, buser, tmp_path / "cli")
    out = tmp_path / "lab"
    res = cli.json("lab", "cost", "--run-seconds", "4", "--out", str(out), timeout=300)
    m = res["measured"]
    assert m["time_scale"] == 360 and m["rate_per_hour"] == pytest.approx(0.096, rel=1e-3)
    assert m["billed_hours"] == pytest.approx(m["real_seconds"] * 0.1, abs=0.05)
    months = res["month"]
    assert months["always-on"]["cost"] == pytest.approx(4 * 0.096 * 720)
    assert months["autoscaled"]["cost"] < months["always-on"]["cost"]
    assert 0 < res["owned_cheaper_than_autoscaled_above"] < 1
    assert (out / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "A simulated month" in (out / "report.md").read_text()
    left = [i for i in buser.ok("GET", "/instances")["instances"] if i["state"] != "terminated"]
    assert left == [], "the lab leaves nothing running"
