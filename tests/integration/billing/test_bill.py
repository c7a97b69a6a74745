"""A real bill: container instances of known types for known (time-scaled) durations, known
bytes in S3, counted requests; checked to the cent against the price list, through REST,
boto3 and the unmodified aws CLI. Then isolation between accounts and bad input."""
from __future__ import annotations

import json
import os
import secrets
import time

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.conftest import ARTIFACTS

from .conftest import SCALE, account_id, aws, client

pytestmark = pytest.mark.integration
MIB = 1 << 20


def _months(day: str) -> tuple[str, str]:
    y, m = int(day[:4]), int(day[5:7])
    y2, m2 = (y + 1, 1) if m == 12 else (y, m + 1)
    return day, f"{y2:04d}-{m2:02d}-01"


def test_a_small_scenario_is_billed_to_the_cent(bserver, buser):
    api = buser
    prices = api.ok("GET", "/billing/prices")
    first_day = api.ok("GET", "/billing/settings")["clock"]["now"][:10]
    s3 = client(bserver, api, "s3")
    bucket = f"bill-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=bucket)                                        # tier 1
    s3.put_object(Bucket=bucket, Key="data.bin", Body=os.urandom(64 * MIB))  # tier 1
    t_put = time.time()
    runs = {}
    for itype in ("t2.micro", "m5.large"):
        inst = api.ok("POST", "/instances", 201, json={"image": "tiny", "type": itype, "tags": {"scenario": "bill"}})
        runs[inst["id"]] = {"type": itype, "start": time.time()}
    try:
        for _ in range(5):
            assert len(s3.get_object(Bucket=bucket, Key="data.bin")["Body"].read()) == 64 * MIB  # tier 2
        for _ in range(2):
            s3.list_objects_v2(Bucket=bucket)                              # tier 1
        time.sleep(12)
        micro, large = list(runs)
        runs[large]["end"] = time.time()
        api.ok("POST", f"/instances/{large}/stop")
        time.sleep(8)
        runs[micro]["end"] = time.time()
        api.ok("DELETE", f"/instances/{micro}")
        bill = api.ok("GET", "/billing", params={"start": first_day, "granularity": "MONTHLY",
                                                  "group_by": "RESOURCE_ID,USAGE_TYPE"})
        t_bill = time.time()
    finally:
        for iid in runs:
            api("DELETE", f"/instances/{iid}")
    lines = {tuple(x["keys"]): x for x in bill["lines"]}
    rows = []
    for iid, r in runs.items():
        hours = (r["end"] - r["start"]) * SCALE / 3600
        price = prices["ec2"]["instance_hour"][r["type"]]
        line = lines[(iid, f"BoxUsage:{r['type']}")]
        rows.append((f"{r['type']} {iid}", f"{hours:.4f} Hrs x ${price}", hours * price, line["quantity"], line["cost"]))
        assert line["unit"] == "Hrs"
        assert line["quantity"] == pytest.approx(hours, abs=0.1), "billed to the transitions (+- request latency)"
        assert abs(line["cost"] - hours * price) < 0.01, "to the cent"
    t1, t2 = lines[(bucket, "Requests-Tier1")], lines[(bucket, "Requests-Tier2")]
    assert (t1["quantity"], t2["quantity"]) == (4, 5), "CreateBucket, PutObject, 2 x ListObjectsV2; 5 x GetObject"
    assert t1["cost"] == pytest.approx(4 / 1000 * prices["s3"]["tier1_per_1000"])
    assert t2["cost"] == pytest.approx(5 / 1000 * prices["s3"]["tier2_per_1000"])
    rows += [("S3 PUT/COPY/POST/LIST", "4 requests", 4 / 1000 * prices["s3"]["tier1_per_1000"], 4, t1["cost"]),
             ("S3 GET", "5 requests", 5 / 1000 * prices["s3"]["tier2_per_1000"], 5, t2["cost"])]
    storage = lines[(bucket, "TimedStorage-ByteHrs")]
    month_hours = 24 * (31 if first_day[5:7] in ("01", "03", "05", "07", "08", "10", "12") else 30)
    gb_months = 64 / 1024 * (t_bill - t_put) * SCALE / 3600 / month_hours
    assert storage["quantity"] == pytest.approx(gb_months, rel=0.06)  # a month boundary may fall in between
    assert storage["cost"] == pytest.approx(storage["quantity"] * prices["s3"]["standard_gb_month"], rel=1e-3)
    rows.append(("S3 Standard, 64 MiB", f"{gb_months:.3g} GB-Mo", gb_months * prices["s3"]["standard_gb_month"],
                 storage["quantity"], storage["cost"]))
    assert bill["total"]["cost"] == pytest.approx(sum(x["cost"] for x in bill["lines"]))
    assert bill["clock"]["time_scale"] == SCALE and "10 real seconds" in bill["clock"]["meaning"]

    # The same bill through boto3's Cost Explorer and the aws CLI, unmodified.
    start, end = _months(first_day)
    ce = client(bserver, api, "ce")
    res = ce.get_cost_and_usage(TimePeriod={"Start": start, "End": end}, Granularity="MONTHLY",
                                Metrics=["UnblendedCost", "UsageQuantity"],
                                GroupBy=[{"Type": "DIMENSION", "Key": "USAGE_TYPE"}])
    by_type: dict[str, float] = {}
    for period in res["ResultsByTime"]:
        for g in period["Groups"]:
            by_type[g["Keys"][0]] = by_type.get(g["Keys"][0], 0.0) + float(g["Metrics"]["UnblendedCost"]["Amount"])
    for iid, r in runs.items():
        assert by_type[f"BoxUsage:{r['type']}"] == pytest.approx(lines[(iid, f"BoxUsage:{r['type']}")]["cost"],
                                                                 abs=1e-6)
    cli = aws(bserver, api, "ce", "get-cost-and-usage", "--time-period", f"Start={start},End={end}",
              "--granularity", "MONTHLY", "--metrics", "UnblendedCost", "--output", "json")
    assert cli.returncode == 0, cli.stderr
    cli_total = sum(float(p["Total"]["UnblendedCost"]["Amount"]) for p in json.loads(cli.stdout)["ResultsByTime"])
    assert cli_total == pytest.approx(sum(by_type.values()), abs=1e-4)  # the meter kept running: storage

    table = ["| item | hand-computed | expected $ | billed quantity | billed $ |", "|---|---|---|---|---|"]
    table += [f"| {a} | {b} | {c:.6f} | {d:.6g} | {e:.6f} |" for a, b, c, d, e in rows]
    (ARTIFACTS / "billing-scenario.md").write_text(
        f"time scale {SCALE:g} ({bill['clock']['meaning']}); prices {prices['source']['region']} "
        f"taken {prices['source']['taken']}\n\n" + "\n".join(table) + "\n")
    s3.delete_object(Bucket=bucket, Key="data.bin")
    s3.delete_bucket(Bucket=bucket)


def test_accounts_see_their_own_bill_and_an_admin_sees_all(bserver, buser):
    other = bserver.new_user(f"o{secrets.token_hex(3)}-{bserver.port}")
    start, end = _months(buser.ok("GET", "/billing/settings")["clock"]["now"][:10])
    inst = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.small"})
    try:
        time.sleep(3)
    finally:
        buser.ok("DELETE", f"/instances/{inst['id']}")
    mine = {tuple(x["keys"]) for x in buser.ok("GET", "/billing", params={"start": start,
                                                                          "group_by": "RESOURCE_ID"})["lines"]}
    assert (inst["id"],) in mine
    theirs = other.ok("GET", "/billing", params={"group_by": "RESOURCE_ID"})
    assert theirs["lines"] == [] and theirs["accounts"] == [account_id(other)]
    status, body = other("GET", "/billing", params={"account": account_id(buser)})
    assert status == 403 and body["error"]["code"] == "UnauthorizedOperation"
    ce_other = client(bserver, other, "ce")
    res = ce_other.get_cost_and_usage(TimePeriod={"Start": start, "End": end}, Granularity="MONTHLY",
                                      Metrics=["UnblendedCost"], GroupBy=[{"Type": "DIMENSION", "Key": "RESOURCE_ID"}])
    assert all(g["Keys"] != [inst["id"]] for p in res["ResultsByTime"] for g in p["Groups"])
    admin = client(bserver, bserver.admin, "ce")
    res = admin.get_cost_and_usage(TimePeriod={"Start": start, "End": end}, Granularity="MONTHLY",
                                   Metrics=["UnblendedCost"], GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}],
                                   Filter={"Dimensions": {"Key": "RESOURCE_ID", "Values": [inst["id"]]}})
    linked = {g["Keys"][0] for p in res["ResultsByTime"] for g in p["Groups"]}
    assert linked == {account_id(buser)}
    assert any(a["Value"] == account_id(buser) for a in res["DimensionValueAttributes"])


@pytest.mark.parametrize("kw, code", [
    ({"TimePeriod": {"Start": "2030-02-01", "End": "2030-01-01"}, "Granularity": "DAILY",
      "Metrics": ["UnblendedCost"]}, "ValidationException"),
    ({"TimePeriod": {"Start": "2020-01-01", "End": "2020-02-01"}, "Granularity": "MONTHLY",
      "Metrics": ["UnblendedCost"]}, "DataUnavailableException"),
    ({"TimePeriod": {"Start": "TODAY", "End": "NEXT"}, "Granularity": "DAILY", "Metrics": ["UnblendedCost"]},
     "ValidationException"),
    ({"Granularity": "WEEKLY", "Metrics": ["UnblendedCost"]}, "ValidationException"),
    ({"Granularity": "DAILY", "Metrics": ["Dollars"]}, "ValidationException"),
    ({"Granularity": "DAILY", "Metrics": ["UnblendedCost"], "GroupBy": [{"Type": "DIMENSION", "Key": "AZ"}]},
     "ValidationException"),
])
def test_cost_explorer_bad_input(bserver, buser, kw, code):
    day = buser.ok("GET", "/billing/settings")["clock"]["now"][:10]
    kw.setdefault("TimePeriod", {"Start": day, "End": _months(day)[1]})
    with pytest.raises(ClientError) as e:
        client(bserver, buser, "ce").get_cost_and_usage(**kw)
    assert e.value.response["Error"]["Code"] == code
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def _signed(server, api, service: str, target: str, body: bytes) -> requests.Response:
    req = AWSRequest("POST", server.url + "/", data=body, headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(api.key_id, api.secret), service, "us-east-1").add_auth(req)
    return requests.post(server.url + "/", data=body, headers=dict(req.headers), timeout=30)


def test_json11_errors_on_the_wire(bserver, buser):
    r = _signed(bserver, buser, "ce", "AWSInsightsIndexService.GetSavingsPlansCoverage", b"{}")
    assert r.status_code == 400 and r.json()["__type"] == "UnknownOperationException"
    assert r.headers["Content-Type"] == "application/x-amz-json-1.1" and r.headers["x-amzn-ErrorType"]
    r = _signed(bserver, buser, "ce", "AWSInsightsIndexService.GetCostAndUsage", b"{not json")
    assert r.status_code == 400 and r.json()["__type"] == "SerializationException"
    r = _signed(bserver, buser, "budgets", "AWSInsightsIndexService.GetCostAndUsage", b"{}")
    assert r.json()["__type"] == "UnknownOperationException", "each service answers only its own target"
    stranger = type("Api", (), {"key_id": "AKIA" + "Z" * 16, "secret": "x" * 40})
    r = _signed(bserver, stranger, "ce", "AWSInsightsIndexService.GetCostAndUsage", b"{}")
    assert r.status_code == 400 and r.json()["__type"] == "UnrecognizedClientException"
    assert set(r.json()) == {"__type", "message"}
    forged = type("Api", (), {"key_id": buser.key_id, "secret": "x" * 40})
    r = _signed(bserver, forged, "budgets", "AWSBudgetServiceGateway.DescribeBudgets", b"{}")
    assert r.status_code == 400 and r.json()["__type"] == "InvalidSignatureException"
    r = requests.post(bserver.url + "/", data=b"{}", timeout=30, headers={
        "X-Amz-Target": "AWSInsightsIndexService.GetCostAndUsage", "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code == 403 and r.json()["__type"] == "MissingAuthenticationTokenException"


def test_budgets_bad_input_and_other_accounts(bserver, buser):
    other = bserver.new_user(f"o{secrets.token_hex(3)}-{bserver.port}")
    mine, theirs = account_id(buser), account_id(other)
    budgets = client(bserver, buser, "budgets")
    good = {"BudgetName": "ok", "BudgetLimit": {"Amount": "5", "Unit": "USD"}, "TimeUnit": "MONTHLY",
            "BudgetType": "COST"}
    for bad, code in [({**good, "BudgetLimit": {"Amount": "-5", "Unit": "USD"}}, "InvalidParameterException"),
                      ({**good, "TimeUnit": "WEEKLY"}, "InvalidParameterException")]:
        with pytest.raises(ClientError) as e:
            budgets.create_budget(AccountId=mine, Budget=bad)
        assert e.value.response["Error"]["Code"] == code
    assert budgets.describe_budgets(AccountId=mine).get("Budgets") == []
    client(bserver, other, "budgets").create_budget(AccountId=theirs, Budget=good)
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.describe_budget(AccountId=theirs, BudgetName="ok")
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.delete_budget(AccountId=theirs, BudgetName="ok")
    with pytest.raises(budgets.exceptions.AccessDeniedException):
        budgets.create_budget(AccountId=theirs, Budget={**good, "BudgetName": "sneaky"})
    assert [b["BudgetName"] for b in client(bserver, other, "budgets").describe_budgets(AccountId=theirs)["Budgets"]] \
        == ["ok"], "nothing changed"
    cli = aws(bserver, other, "budgets", "describe-budgets", "--account-id", theirs, "--output", "json")
    assert cli.returncode == 0 and json.loads(cli.stdout)["Budgets"][0]["BudgetName"] == "ok"


def test_a_vm_is_metered_from_libvirt_domain_stats(bserver, buser):
    start, end = _months(buser.ok("GET", "/billing/settings")["clock"]["now"][:10])
    vm = buser.ok("POST", "/instances", 201, json={"image": "tiny", "kind": "vm", "type": "t2.nano"})
    try:
        buser.wait_state(vm["id"])
        running_since = time.monotonic()
        deadline, used = time.monotonic() + 30, {}
        while time.monotonic() < deadline and not used.get("measured_seconds", 0) > 2:
            time.sleep(1)  # two engine samples at least, a pass a second (slower on a busy host)
            used = next((p for p in buser.ok("GET", "/billing", params={"start": start})["paid_vs_used"]
                         if p["instance_id"] == vm["id"]), {})
        assert used["kind"] == "vm" and used["cpu_utilisation"] is not None and used["measured_seconds"] > 2
        assert used["memory_peak_mib"] > 10, "QEMU's resident memory, from the balloon stats"
        time.sleep(max(0.0, running_since + 5 - time.monotonic()))  # at least 5 real seconds running
    finally:
        buser.ok("DELETE", f"/instances/{vm['id']}")
    res = client(bserver, buser, "ce").get_cost_and_usage(
        TimePeriod={"Start": start, "End": end}, Granularity="MONTHLY", Metrics=["UsageQuantity"],
        Filter={"Dimensions": {"Key": "PLATFORM", "Values": ["vm"]}})
    hours = sum(float(p["Total"]["UsageQuantity"]["Amount"]) for p in res["ResultsByTime"])
    assert hours > 0.4, "5+ real seconds running at 10 s per billed hour"


def test_forecast_hourly_and_tag_views_budget_updates_and_the_bill_cli(bserver, buser, tmp_path):
    from tests.integration.test_cli import Cli

    me = account_id(buser)
    day = buser.ok("GET", "/billing/settings")["clock"]["now"][:10]
    start, end = _months(day)
    ce = client(bserver, buser, "ce")
    with pytest.raises(ce.exceptions.DataUnavailableException):
        ce.get_cost_forecast(TimePeriod={"Start": day, "End": end}, Metric="UNBLENDED_COST", Granularity="MONTHLY")
    inst = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "m5.large", "tags": {"team": "blue"}})
    try:
        time.sleep(4)
        buser.ok("GET", "/billing")  # a pass now, so the run rate is known
        f = ce.get_cost_forecast(TimePeriod={"Start": day, "End": end}, Metric="UNBLENDED_COST", Granularity="MONTHLY")
        assert float(f["Total"]["Amount"]) > 0 and f["ForecastResultsByTime"]
        hourly = ce.get_cost_and_usage(
            TimePeriod={"Start": f"{day}T00:00:00Z", "End": f"{_months(day)[1]}T00:00:00Z"}, Granularity="HOURLY",
            Metrics=["UnblendedCost", "UsageQuantity"], GroupBy=[{"Type": "TAG", "Key": "team"},
                                                                 {"Type": "DIMENSION", "Key": "SERVICE"}])
        keys = {tuple(g["Keys"]) for p in hourly["ResultsByTime"] for g in p["Groups"]}
        assert ("team$blue", "Amazon Elastic Compute Cloud - Compute") in keys, keys
    finally:
        buser.ok("DELETE", f"/instances/{inst['id']}")
    budgets = client(bserver, buser, "budgets")
    limit = {"BudgetName": "up", "BudgetLimit": {"Amount": "5", "Unit": "USD"}, "TimeUnit": "MONTHLY",
             "BudgetType": "COST"}
    budgets.create_budget(AccountId=me, Budget=limit)
    budgets.update_budget(AccountId=me, NewBudget={**limit, "BudgetLimit": {"Amount": "7", "Unit": "USD"}})
    got = budgets.describe_budget(AccountId=me, BudgetName="up")["Budget"]
    assert float(got["BudgetLimit"]["Amount"]) == 7 and float(got["CalculatedSpend"]["ActualSpend"]["Amount"]) > 0
    with pytest.raises(ClientError) as e:
        budgets.update_budget(AccountId=me, NewBudget={**limit, "BudgetLimit": {"Amount": "-1", "Unit": "USD"}})
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert float(budgets.describe_budget(AccountId=me, BudgetName="up")["Budget"]["BudgetLimit"]["Amount"]) == 7
    budgets.delete_budget(AccountId=me, BudgetName="up")
    with pytest.raises(budgets.exceptions.NotFoundException):
        budgets.describe_budget(AccountId=me, BudgetName="up")
    cli = Cli(bserver, buser, tmp_path / "cli")
    table = cli("bill", "--start", start, "--group-by", "RESOURCE_ID").stdout
    assert inst["id"] in table and "Total:" in table and "time scale 360" in table
    data = cli.json("bill", "--start", start, "--group-by", "TAG:team")
    assert data["lines"][0]["keys"] == ["team$blue"] and data["total"]["cost"] > 0


SERVE = """#!/bin/sh
mkdir -p /www
dd if=/dev/zero of=/www/blob bs=1M count=4
printf '#!/bin/sh\\nhttpd -p 80 -h /www\\n' > /etc/rc.local
chmod +x /etc/rc.local
"""


def test_data_sent_out_through_a_forward_is_billed_as_transfer_out(bserver, buser):
    prices = buser.ok("GET", "/billing/prices")
    day = buser.ok("GET", "/billing/settings")["clock"]["now"][:10]
    inst = buser.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano", "ports": [{"guest": 80}],
                                                     "user_data": SERVE})
    try:
        url = f"http://127.0.0.1:{inst['ports'][0]['host']}/blob"
        deadline = time.monotonic() + 30
        while True:
            try:
                if len(requests.get(url, timeout=5).content) == 4 * MIB:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the forward never served the blob"
            time.sleep(0.3)
        for _ in range(5):
            assert len(requests.get(url, timeout=10).content) == 4 * MIB
        time.sleep(3)  # two engine samples after the last byte, a pass a second
        bill = buser.ok("GET", "/billing", params={"start": day, "group_by": "USAGE_TYPE"})
    finally:
        buser.ok("DELETE", f"/instances/{inst['id']}")
    line = next((x for x in bill["lines"] if x["keys"] == ["DataTransfer-Out-Bytes"]), bill["lines"])
    sent_gb = 6 * 4 * MIB / (1 << 30)
    assert isinstance(line, dict), line
    assert line["unit"] == "GB" and sent_gb <= line["quantity"] < 1.3 * sent_gb, "6 x 4 MiB, plus TCP/IP headers"
    assert line["cost"] == pytest.approx(line["quantity"] * prices["data_transfer"]["out_gb"], rel=1e-6)
