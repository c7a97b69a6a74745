"""Cost Explorer (SigV4 service `ce`, AWS JSON 1.1, target AWSInsightsIndexService): bills
read from pocketcloud's meter. A plain account sees its own costs; an admin sees every
account (as a management account sees its member accounts, LINKED_ACCOUNT tells them apart)."""
from __future__ import annotations

from emulator.errors import InvalidParameter

from ..json11 import create_json11_app, required


def _accounts(caller) -> list[str] | None:
    return None if caller.is_admin else [caller.id]


def _period(data: dict) -> tuple:
    tp = data.get("TimePeriod")
    if not isinstance(tp, dict):
        raise InvalidParameter("TimePeriod {Start, End} is required", code="ValidationException")
    return tp.get("Start"), tp.get("End")


def get_cost_and_usage(cloud, caller, data: dict) -> dict:
    required(data, "TimePeriod", "Granularity", "Metrics")
    start, end = _period(data)
    return cloud.billing.reports.cost_and_usage(
        accounts=_accounts(caller), start=start, end=end, granularity=data.get("Granularity"),
        metrics=data.get("Metrics"), group_by=data.get("GroupBy"), filter=data.get("Filter"))


def get_cost_forecast(cloud, caller, data: dict) -> dict:
    required(data, "TimePeriod", "Metric", "Granularity")
    start, end = _period(data)
    return cloud.billing.reports.forecast(
        accounts=_accounts(caller), start=start, end=end, granularity=data.get("Granularity"),
        metric=data.get("Metric"), filter=data.get("Filter"), level=data.get("PredictionIntervalLevel"))


def get_dimension_values(cloud, caller, data: dict) -> dict:
    """The values a dimension takes in a period (what the console's filter lists offer)."""
    from emulator.billing.reports import DIMENSIONS

    required(data, "TimePeriod", "Dimension")
    start, end = _period(data)
    dim = data.get("Dimension")
    if dim not in DIMENSIONS:
        raise InvalidParameter(f"unsupported dimension {str(dim)[:40]!r}", code="ValidationException")
    reports = cloud.billing.reports
    a, b = reports.check_period(start, end, "DAILY")
    values = sorted({DIMENSIONS[dim](r) for r in reports.rows(_accounts(caller), a, b)} - {""})
    text = data.get("SearchString") or ""
    values = [v for v in values if text.lower() in v.lower()]
    return {"DimensionValues": [{"Value": v, "Attributes": {}} for v in values],
            "ReturnSize": len(values), "TotalSize": len(values)}


def get_tags(cloud, caller, data: dict) -> dict:
    required(data, "TimePeriod")
    start, end = _period(data)
    reports = cloud.billing.reports
    a, b = reports.check_period(start, end, "DAILY")
    rows = reports.rows(_accounts(caller), a, b)
    key = data.get("TagKey")
    tags = sorted({v for r in rows for k, v in r["tags"].items() if k == key} if key
                  else {k for r in rows for k in r["tags"]})
    return {"Tags": tags, "ReturnSize": len(tags), "TotalSize": len(tags)}


ACTIONS = {
    "GetCostAndUsage": get_cost_and_usage,
    "GetCostForecast": get_cost_forecast,
    "GetDimensionValues": get_dimension_values,
    "GetTags": get_tags,
}


def create_ce_app(cloud):
    return create_json11_app(cloud, service="ce", target_prefix="AWSInsightsIndexService", actions=ACTIONS)
