"""Cost Explorer's semantics over the usage rows, and its errors; the JSON 1.1 error shape."""
from __future__ import annotations

import json

import pytest

from api.errors import json11_error
from emulator.billing import clock as clk
from emulator.errors import InvalidParameter, NotFound, Unauthorized

from .billing_fakes import add_bucket, make_cloud


@pytest.fixture
def cloud(tmp_path, wall):
    c = make_cloud(tmp_path, scale="3600")     # one real second bills as an hour
    c.alice = c.accounts.create("alice")[0]
    c.bob = c.accounts.create("bob")[0]
    c.billing.meter_now()
    a = c.run_instance(c.alice, image="tiny", type="m5.large", tags={"team": "red"})
    b = c.run_instance(c.bob, image="tiny", type="t2.micro")
    add_bucket(c, "bkt", c.alice.id)
    c.storage.index.record_object("bkt", "k", 1 << 30)
    wall.advance(10)                           # 10 billed hours
    c.stop_instance(c.alice, a.id)
    c.stop_instance(c.bob, b.id)
    c.billing.meter_now()
    return c


def today(cloud) -> tuple[str, str]:
    now = cloud.billing.clock.now()
    return clk.day(clk.day_start(now)), clk.day(clk.day_start(now) + 86400)


def cau(cloud, accounts, **kw):
    start, end = today(cloud)
    args = {"start": start, "end": end, "granularity": "DAILY", "metrics": ["UnblendedCost", "UsageQuantity"]}
    args.update(kw)
    return cloud.billing.reports.cost_and_usage(accounts=accounts, **args)


def test_a_plain_account_sees_its_own_costs_grouped_by_service(cloud):
    res = cau(cloud, [cloud.alice.id], group_by=[{"Type": "DIMENSION", "Key": "SERVICE"}])
    groups = {g["Keys"][0]: g["Metrics"] for g in res["ResultsByTime"][0]["Groups"]}
    assert float(groups["Amazon Elastic Compute Cloud - Compute"]["UnblendedCost"]["Amount"]) == pytest.approx(0.96)
    assert groups["Amazon Elastic Compute Cloud - Compute"]["UsageQuantity"] == {"Amount": "10", "Unit": "Hrs"}
    assert "Amazon Simple Storage Service" in groups
    assert res["ResultsByTime"][0]["Total"] == {} and res["ResultsByTime"][0]["Estimated"] is True


def test_an_admin_sees_every_account_by_linked_account(cloud):
    res = cau(cloud, None, metrics=["BlendedCost", "AmortizedCost", "UnblendedCost"],
              group_by=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}])
    by = {g["Keys"][0]: g["Metrics"] for g in res["ResultsByTime"][0]["Groups"]}
    assert float(by[cloud.bob.id]["UnblendedCost"]["Amount"]) == pytest.approx(0.116)
    assert by[cloud.bob.id]["BlendedCost"] == by[cloud.bob.id]["AmortizedCost"] == by[cloud.bob.id]["UnblendedCost"]
    assert {"Value": cloud.alice.id, "Attributes": {"description": "alice"}} in res["DimensionValueAttributes"]


def test_group_by_tag_and_usage_type_and_filters(cloud):
    res = cau(cloud, None, group_by=[{"Type": "TAG", "Key": "team"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
              filter={"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Elastic Compute Cloud - Compute"]}})
    keys = sorted(tuple(g["Keys"]) for g in res["ResultsByTime"][0]["Groups"])
    assert keys == [("team$", "BoxUsage:t2.micro"), ("team$red", "BoxUsage:m5.large")]
    only_absent = cau(cloud, None, filter={"Tags": {"Key": "team", "MatchOptions": ["ABSENT"]}})
    untagged = float(only_absent["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"])
    assert untagged > 0.116  # bob's instance and alice's bucket
    expr = {"And": [{"Dimensions": {"Key": "INSTANCE_TYPE", "Values": ["M5"], "MatchOptions": ["STARTS_WITH",
                                                                                              "CASE_INSENSITIVE"]}},
                    {"Not": {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [cloud.bob.id]}}}]}
    assert float(cau(cloud, None, filter=expr)["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"]) == \
        pytest.approx(0.96)


def test_hourly_and_monthly_periods(cloud):
    now = cloud.billing.clock.now()
    res = cau(cloud, [cloud.alice.id], granularity="HOURLY", start=clk.iso(clk.hour_start(now) - 11 * 3600),
              end=clk.iso(clk.hour_start(now) + 3600), metrics=["UsageQuantity"],
              filter={"Dimensions": {"Key": "USAGE_TYPE", "Values": ["BoxUsage:m5.large"]}})
    hours = [float(r["Total"]["UsageQuantity"]["Amount"]) for r in res["ResultsByTime"]]
    assert len(hours) == 12 and sum(hours) == pytest.approx(10) and max(hours) <= 1.0000001
    assert res["ResultsByTime"][0]["TimePeriod"]["Start"].endswith(":00:00Z")
    a = clk.month_start(now)
    monthly = cau(cloud, [cloud.alice.id], granularity="MONTHLY", start=clk.day(a), end=clk.day(clk.add_months(a, 1)))
    assert len(monthly["ResultsByTime"]) == 1


@pytest.mark.parametrize("kw, code, words", [
    ({"granularity": "WEEKLY"}, "ValidationException", "Granularity"),
    ({"metrics": ["Bogus"]}, "ValidationException", "unsupported metric"),
    ({"metrics": []}, "ValidationException", "Metrics"),
    ({"group_by": [{"Type": "DIMENSION", "Key": "AZ"}]}, "ValidationException", "unsupported GroupBy"),
    ({"group_by": [{"Type": "COST_CATEGORY", "Key": "x"}]}, "ValidationException", "cost categor"),
    ({"group_by": [{"Type": "TAG", "Key": "a"}] * 3}, "ValidationException", "at most 2"),
    ({"filter": {"Dimensions": {"Key": "SERVICE", "Values": ["x"]}, "Tags": {"Key": "a", "Values": ["b"]}}},
     "ValidationException", "exactly one"),
    ({"filter": {"And": [{"Tags": {"Key": "a", "Values": ["b"]}}]}}, "ValidationException", "at least two"),
    ({"start": "2026-13-40"}, "ValidationException", "must be a date"),
])
def test_bad_input_answers_cost_explorers_codes(cloud, kw, code, words):
    with pytest.raises(InvalidParameter) as e:
        cau(cloud, [cloud.alice.id], **kw)
    assert e.value.code == code and words in str(e.value)


def test_periods_end_before_start_beyond_next_month_and_beyond_retention(cloud):
    now = cloud.billing.clock.now()
    start, end = today(cloud)
    with pytest.raises(InvalidParameter, match="should be before end date") as e:
        cau(cloud, None, start=end, end=start)
    assert e.value.code == "ValidationException"
    with pytest.raises(InvalidParameter, match="past the beginning of next month"):
        cau(cloud, None, end=clk.day(clk.add_months(clk.month_start(now), 2)))
    with pytest.raises(InvalidParameter, match="too old for hourly"):
        cau(cloud, None, granularity="HOURLY", start=clk.day(now - 20 * 86400))
    with pytest.raises(InvalidParameter) as e:
        cau(cloud, None, granularity="MONTHLY", start=clk.day(clk.add_months(clk.month_start(now), -16)))
    assert e.value.code == "DataUnavailableException"


def test_forecast_extrapolates_the_run_rate_and_needs_history(cloud, tmp_path, wall):
    now = cloud.billing.clock.now()
    start = clk.day(clk.day_start(now))
    end = clk.day(clk.day_start(now) + 2 * 86400)
    f = cloud.billing.reports.forecast(accounts=[cloud.bob.id], start=start, end=end, granularity="DAILY",
                                       metric="UNBLENDED_COST")
    assert len(f["ForecastResultsByTime"]) == 2
    mean = float(f["Total"]["Amount"])
    assert mean > 0.116 and float(f["ForecastResultsByTime"][0]["PredictionIntervalLowerBound"]) <= \
        float(f["ForecastResultsByTime"][0]["MeanValue"])
    carol = cloud.accounts.create("carol")[0]
    with pytest.raises(InvalidParameter) as e:
        cloud.billing.reports.forecast(accounts=[carol.id], start=start, end=end, granularity="DAILY",
                                       metric="UNBLENDED_COST")
    assert e.value.code == "DataUnavailableException"
    with pytest.raises(InvalidParameter, match="start today"):
        cloud.billing.reports.forecast(accounts=None, start=clk.day(now - 3 * 86400), end=end, granularity="DAILY",
                                       metric="UNBLENDED_COST")
    with pytest.raises(InvalidParameter, match="unsupported forecast metric"):
        cloud.billing.reports.forecast(accounts=None, start=start, end=end, granularity="DAILY", metric="UnblendedCost")


def test_the_json11_error_shape_is_pinned():
    body, status = json11_error(InvalidParameter("Start date (and hour) should be before end date (and hour)",
                                                 code="ValidationException"))
    assert status == 400 and json.loads(body) == {
        "__type": "ValidationException", "message": "Start date (and hour) should be before end date (and hour)"}
    assert json11_error(NotFound("no budget", code="NotFoundException"))[1] == 400
    assert json11_error(Unauthorized("no token", code="MissingAuthenticationTokenException"))[1] == 403
    body, status = json11_error(RuntimeError("secret /root/path"))
    assert status == 500 and "secret" not in body and json.loads(body)["__type"] == "InternalFailure"
