"""Billing over REST, for curl, the CLI and the console:

GET  /api/v1/billing                 the bill (default: this month on the billing clock, by service)
GET  /api/v1/billing/forecast        projected cost (?start&end&granularity)
GET  /api/v1/billing/prices          the price list in use and where its figures come from
GET  /api/v1/billing/settings        the billing clock and meter; PUT {"time_scale": N} (admin)
GET  /api/v1/billing/alerts          budget alerts, newest first (?since=ID)
GET  /api/v1/billing/budgets         budgets; POST {name, limit, time_unit, notifications, stop_instances_at}
DELETE /api/v1/billing/budgets/NAME
GET  /api/v1/billing/hygiene         waste, its monthly cost, and the command that cleans it up

A plain account sees its own; an admin sees every account, or one with ?account=NAME.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from emulator.billing import clock as clk
from emulator.billing.reports import month_to_date
from emulator.errors import CloudError, Forbidden, InvalidParameter

from .rest import _only, authenticated, body, cloud

bp = Blueprint("rest_billing", __name__, url_prefix="/api/v1/billing")


def _account_id(ref: str) -> str:
    accts = cloud().accounts
    return (accts.get(ref) if ref.isdigit() and len(ref) == 12 else accts.by_name(ref)).id


def scope() -> list[str] | None:
    """The accounts a request may see: one's own; an admin every one (None) or ?account=."""
    ref = request.args.get("account")
    if not g.account.is_admin:
        if ref and ref not in (g.account.name, g.account.id):
            raise Forbidden("only an admin can see other accounts' bills")
        return [g.account.id]
    if not ref or ref == "all":
        return None
    return [_account_id(ref)]


def _group_by(value: str | None) -> list[dict]:
    if value in (None, ""):
        return [{"Type": "DIMENSION", "Key": "SERVICE"}]
    if value.lower() == "none":
        return []
    out = []
    for part in value.split(","):
        if part.upper().startswith("TAG:"):
            out.append({"Type": "TAG", "Key": part[4:]})
        else:
            out.append({"Type": "DIMENSION", "Key": part.upper()})
    return out


@bp.get("")
@authenticated
def bill():
    billing = cloud().billing
    billing.meter_now()
    accounts = scope()
    a, b = month_to_date(billing.clock)
    start = request.args.get("start") or clk.day(a)
    end = request.args.get("end") or clk.day(b)
    granularity = request.args.get("granularity", "DAILY").upper()
    groups = _group_by(request.args.get("group_by"))
    reports = billing.reports
    res = reports.cost_and_usage(accounts=accounts, start=start, end=end, granularity=granularity,
                                 metrics=["UnblendedCost", "UsageQuantity"], group_by=groups)
    pa, pb = clk.parse_date(start, "start"), clk.parse_date(end, "end")
    lines: dict[tuple, dict] = {}
    total = 0.0
    for period in res["ResultsByTime"]:
        entries = period["Groups"] or ([{"Keys": [], "Metrics": period["Total"]}] if period["Total"] else [])
        for grp in entries:
            cost = float(grp["Metrics"]["UnblendedCost"]["Amount"])
            q = grp["Metrics"]["UsageQuantity"]
            line = lines.setdefault(tuple(grp["Keys"]), {"keys": grp["Keys"], "cost": 0.0, "quantity": 0.0,
                                                         "unit": q["Unit"]})
            line["cost"] += cost
            line["quantity"] += float(q["Amount"])
            if line["unit"] != q["Unit"]:
                line["unit"] = "N/A"
            total += cost
    forecast = None
    try:
        now = billing.clock.now()
        if pa <= now < pb:
            f = reports.forecast(accounts=accounts, start=clk.day(now), end=clk.day(pb), granularity="MONTHLY",
                                 metric="UNBLENDED_COST")
            forecast = {"end_of_period": float(f["Total"]["Amount"]) + reports.cost_between(accounts, pa, clk.day_start(now))}
    except CloudError:
        pass
    return jsonify({
        "clock": billing.clock.describe(),
        "prices": billing.prices.current().to_dict()["source"],
        "period": {"start": start, "end": end, "granularity": granularity},
        "accounts": "all" if accounts is None else accounts,
        "group_by": groups,
        "total": {"cost": round(total, 10), "currency": "USD"},
        "lines": sorted(lines.values(), key=lambda x: -x["cost"]),
        "results_by_time": res["ResultsByTime"],
        "top_resources": reports.top_resources(accounts, pa, pb),
        "paid_vs_used": reports.paid_vs_used(accounts, pa, pb),
        "forecast": forecast,
    })


@bp.get("/forecast")
@authenticated
def forecast():
    billing = cloud().billing
    billing.meter_now()
    now = billing.clock.now()
    _, end = month_to_date(billing.clock)
    return jsonify(billing.reports.forecast(
        accounts=scope(), start=request.args.get("start") or clk.day(now), end=request.args.get("end") or clk.day(end),
        granularity=request.args.get("granularity", "MONTHLY").upper(), metric="UNBLENDED_COST"))


@bp.get("/prices")
@authenticated
def prices():
    return jsonify(cloud().billing.prices.current().to_dict())


@bp.get("/settings")
@authenticated
def settings():
    return jsonify(cloud().billing.settings())


@bp.put("/settings")
@authenticated
def change_settings():
    data = _only(body(), {"time_scale"})
    if "time_scale" not in data:
        raise InvalidParameter("give time_scale (1 = real time, 60 = one real minute bills as an hour)",
                               code="MissingParameter")
    cloud().billing.set_time_scale(g.account, data["time_scale"])
    return jsonify(cloud().billing.settings())


@bp.get("/alerts")
@authenticated
def alerts():
    since = request.args.get("since", "0")
    if not since.isdecimal():
        raise InvalidParameter("since must be an alert id (a number)")
    return jsonify(alerts=cloud().billing.budgets.alerts(scope(), since=int(since)))


# -- budgets, the short way (the Budgets API has the long one) ---------------------------------------
def _budget_account() -> str:
    ref = request.args.get("account")
    if not ref or ref in (g.account.name, g.account.id):
        return g.account.id
    if not g.account.is_admin:
        raise Forbidden("only an admin can manage other accounts' budgets")
    return _account_id(ref)


@bp.get("/budgets")
@authenticated
def list_budgets():
    budgets = cloud().billing.budgets
    account = _budget_account()
    out = []
    for b in budgets.list(g.account, account):
        out.append({**b, "Notifications": budgets.notifications(g.account, account, b["BudgetName"]),
                    "Actions": budgets.actions(g.account, account, b["BudgetName"])})
    return jsonify(budgets=out)


@bp.post("/budgets")
@authenticated
def create_budget():
    data = _only(body(), {"name", "limit", "time_unit", "notifications", "stop_instances_at", "subscribers"})
    for f in ("name", "limit"):
        if f not in data:
            raise InvalidParameter(f"field {f!r} is required", code="MissingParameter")
    limit = data["limit"]
    if isinstance(limit, bool) or not isinstance(limit, (int, float, str)):
        raise InvalidParameter("limit must be an amount in USD", code="InvalidParameterException")
    account = _budget_account()
    subs = data.get("subscribers") or [{"SubscriptionType": "EMAIL", "Address": f"{g.account.name}@pocketcloud.local"}]
    if not isinstance(subs, list) or not all(isinstance(s, dict) for s in subs):
        raise InvalidParameter("subscribers are a list of {SubscriptionType, Address}", code="InvalidParameterException")
    asked = data.get("notifications") or [{"type": "ACTUAL", "threshold": 100}]
    if not isinstance(asked, list):
        raise InvalidParameter("notifications are a list of {type, threshold, threshold_type, comparison}",
                               code="InvalidParameterException")
    notes = []
    for n in asked:
        if not isinstance(n, dict):
            raise InvalidParameter("notifications are {type, threshold, threshold_type, comparison}")
        notes.append({"Notification": {"NotificationType": n.get("type", "ACTUAL"),
                                       "ComparisonOperator": n.get("comparison", "GREATER_THAN"),
                                       "Threshold": n.get("threshold"),
                                       "ThresholdType": n.get("threshold_type", "PERCENTAGE")},
                      "Subscribers": subs})
    budgets = cloud().billing.budgets
    budgets.create(g.account, account, {"BudgetName": data["name"], "BudgetType": "COST",
                                        "TimeUnit": data.get("time_unit", "MONTHLY"),
                                        "BudgetLimit": {"Amount": str(limit), "Unit": "USD"}}, notes)
    if data.get("stop_instances_at") is not None:
        try:
            budgets.create_action(g.account, account, data["name"], {
                "ActionType": "RUN_SSM_DOCUMENTS", "NotificationType": "ACTUAL", "ApprovalModel": "AUTOMATIC",
                "ActionThreshold": {"ActionThresholdValue": data["stop_instances_at"],
                                    "ActionThresholdType": "PERCENTAGE"},
                "Definition": {"SsmActionDefinition": {"ActionSubType": "STOP_EC2_INSTANCES", "InstanceIds": []}}})
        except CloudError:
            budgets.delete(g.account, account, data["name"])  # all or nothing
            raise
    b = budgets.describe(g.account, account, data["name"])
    return jsonify({**b, "Notifications": budgets.notifications(g.account, account, data["name"]),
                    "Actions": budgets.actions(g.account, account, data["name"])}), 201


@bp.delete("/budgets/<name>")
@authenticated
def delete_budget(name: str):
    cloud().billing.budgets.delete(g.account, _budget_account(), name)
    return "", 204


@bp.get("/hygiene")
@authenticated
def hygiene():
    a = request.args
    accounts = scope()
    return jsonify(cloud().billing.hygiene.report(accounts, idle_minutes=a.get("idle_minutes"),
                                                  cpu_percent=a.get("cpu_percent"),
                                                  untouched_days=a.get("untouched_days"),
                                                  snapshot_days=a.get("snapshot_days")))
