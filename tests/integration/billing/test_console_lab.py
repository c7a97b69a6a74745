"""The console's billing page (signed in, CSRF-checked forms) and `pocketcloud lab cost`."""
from __future__ import annotations

import html
import re
import time

import pytest
import requests

from emulator.billing.costlab import TargetTracking, Workload
from tests.integration.test_cli import Cli

pytestmark = pytest.mark.integration


def signed_in(server, api) -> tuple[requests.Session, str]:
    s = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', s.get(server.console_url + "/ui/login").text).group(1)
    r = s.post(server.console_url + "/ui/login", data={"csrf": csrf, "access_key_id": api.key_id,
                                              "secret_access_key": api.secret})
    assert r.status_code == 200 and "/ui/login" not in r.url
    return s, csrf


def test_the_billing_page_charts_costs_and_manages_budgets(bserver, buser):
    inst = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.micro"})
    try:
        s, _ = signed_in(bserver, buser)
        page = s.get(bserver.console_url + "/ui/billing")
        assert page.status_code == 200 and "<svg" in page.text and "cost per period by service" in page.text
        assert inst["id"] in page.text, "top resources and paid-for vs used list the running instance"
        assert "Content-Security-Policy" in page.headers and "style=" not in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        r = s.post(bserver.console_url + "/ui/billing/budgets", data={"csrf": csrf, "name": "web", "limit": "-1"})
        assert "positive number" in r.text and "InvalidParameterException" in r.text
        r = s.post(bserver.console_url + "/ui/billing/budgets", data={"csrf": csrf, "name": "web", "limit": "0.01",
                                                              "threshold": "10"})
        assert "Budget web created." in r.text
        assert [b["BudgetName"] for b in buser.ok("GET", "/billing/budgets")["budgets"]] == ["web"]
        # 10% of $0.01 is about 3 real seconds of the t2.micro: the banner shows on every page.
        deadline = time.monotonic() + 30
        while not buser.ok("GET", "/billing/alerts")["alerts"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert buser.ok("GET", "/billing/alerts")["alerts"], "the budget fired"
        banner = html.unescape(s.get(bserver.console_url + "/ui/").text)
        assert "Budget alert: Budget 'web': actual spend $" in banner and "above 10% of $0.01" in banner
        delete = bserver.console_url + "/ui/billing/budgets/web/delete"
        assert s.post(delete, data={"csrf": "forged"}).status_code == 400
        r = s.post(delete, data={"csrf": csrf})
        assert "Budget web deleted." in r.text and buser.ok("GET", "/billing/budgets")["budgets"] == []
        assert requests.get(bserver.console_url + "/ui/billing", allow_redirects=False).status_code == 302, "signed out"
    finally:
        buser("DELETE", f"/instances/{inst['id']}")


def test_lab_cost_measures_a_real_run_and_compares_a_month(bserver, buser, tmp_path):
    cli = Cli(bserver, buser, tmp_path / "cli")
    out = tmp_path / "lab"
    # The lab runs the billing clock fast: by its end the clock may be in another month (on the
    # last day of one it was): the bill is asked from the day the lab began, as the lab does.
    start_day = buser.ok("GET", "/billing/settings")["clock"]["now"][:10]
    res = cli.json("lab", "cost", "--run-seconds", "4", "--hour-seconds", "1", "--out", str(out), timeout=300)
    m = res["measured"]
    assert m["time_scale"] == 360 and m["rate_per_hour"] == pytest.approx(0.096, rel=1e-3)
    assert m["billed_hours"] == pytest.approx(m["real_seconds"] * 0.1, abs=0.05)
    # The engine watched the whole day; how much CPU the burn got depends on the host's load.
    assert m["measured_seconds"] >= 4 and 0 < m["cpu_utilisation"] < 0.8, "busy half the day, idle after"
    # The autoscaled setup is a real group: scheduled out for the peak, in after it, and metered.
    grp = res["group"]
    plan = TargetTracking("m5.large", max_size=4).capacity(Workload().demand(), 2)
    assert grp["plan"] == plan and max(plan) == 4 and min(plan) == 1
    peak = [h for h, n in enumerate(plan) if n == 4]
    quiet = [h for h, n in enumerate(plan) if n == 1 and h - 1 not in peak and h - 2 not in peak]
    assert max(grp["hourly"][h] for h in peak) > 2, "the group scaled out for the peak"
    assert all(grp["hourly"][h] == pytest.approx(1, abs=0.05) for h in quiet), "one instance off-peak"
    assert quiet[-1] > peak[-1] and sum(grp["hourly"]) < sum(plan) + 4, "and scaled back in after it"
    assert grp["instances_launched"] >= 4 and set(grp["instance_ids"]) <= {
        a for line in buser.ok("GET", "/billing", params={"group_by": "RESOURCE_ID", "start": start_day})["lines"]
        for a in line["keys"]}
    assert grp["rate_per_hour"] == pytest.approx(0.096, rel=1e-3)
    assert grp["billed_hours"] == pytest.approx(grp["sampled_billed_hours"], rel=0.15), "meter and samples agree"
    months = res["month"]
    assert months["always-on"]["cost"] == pytest.approx(4 * 0.096 * 720)
    assert months["autoscaled"]["cost"] == pytest.approx(sum(grp["hourly"]) * 30 * 0.096, rel=1e-3)
    assert months["autoscaled"]["cost"] < months["always-on"]["cost"]
    assert buser.ok("GET", "/groups")["groups"] == [] and buser.ok("GET", "/launch-templates")["launch_templates"] == []
    assert 0 < res["owned_cheaper_than_autoscaled_above"] < 1
    assert (out / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "A simulated month" in (out / "report.md").read_text()
    left = [i for i in buser.ok("GET", "/instances")["instances"] if i["state"] != "terminated"]
    assert left == [], "the lab leaves nothing running"
