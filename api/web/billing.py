"""The console's billing page (/ui/billing): cost over time by service (a server-drawn SVG, no
script), the top resources, paid-for vs used, budgets (create, delete) and their alerts, and
the hygiene summary. Same calls and ownership rules as the REST API.

Hooked in by `register(app)` beside the console's own blueprint (api/web/__init__.py), plus the
nav link and the alert banner in base.html."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from emulator.billing import clock as clk
from emulator.billing.reports import month_to_date
from emulator.errors import CloudError

from .views import _load_account, _security_headers

bp = Blueprint("web_billing", __name__, url_prefix="/ui/billing", template_folder="templates")
bp.before_request(_load_account)
bp.after_request(_security_headers)
COLOURS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"]


def cloud():
    return current_app.config["CLOUD"]


def _scope() -> list[str] | None:
    return None if g.account.is_admin else [g.account.id]


def svg_chart(periods: list[str], series: dict[str, list[float]], width: int = 760, height: int = 230) -> Markup:
    """Stacked bars, one per period, one colour per series; presentation attributes only (the
    console's CSP forbids inline styles and scripts)."""
    left, bottom, top = 56, 28, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    totals = [sum(s[i] for s in series.values()) for i in range(len(periods))]
    peak = max(totals + [0.0]) or 1.0
    n = max(1, len(periods))
    bar = plot_w / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="cost per period by service" class="chart">']
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#6b7280">'
                     f'${peak * frac:.2f}</text>')
    for i, label in enumerate(periods):
        y = top + plot_h
        for j, (name, values) in enumerate(series.items()):
            h = plot_h * values[i] / peak
            if h <= 0:
                continue
            y -= h
            parts.append(f'<rect x="{left + i * bar + 1:.1f}" y="{y:.1f}" width="{max(1.0, bar - 2):.1f}" '
                         f'height="{h:.1f}" fill="{COLOURS[j % len(COLOURS)]}"><title>{escape(label)} '
                         f'{escape(name)}: ${values[i]:.4f}</title></rect>')
        if n <= 12 or i % max(1, n // 8) == 0:
            parts.append(f'<text x="{left + (i + 0.5) * bar:.1f}" y="{height - 10}" font-size="10" '
                         f'text-anchor="middle" fill="#6b7280">{escape(label[5:])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@bp.get("")
def page():
    billing = cloud().billing
    billing.meter_now()
    accounts = _scope()
    a, b = month_to_date(billing.clock)
    res = billing.reports.cost_and_usage(accounts=accounts, start=clk.day(a), end=clk.day(b), granularity="DAILY",
                                         metrics=["UnblendedCost"], group_by=[{"Type": "DIMENSION", "Key": "SERVICE"}])
    periods = [r["TimePeriod"]["Start"] for r in res["ResultsByTime"]]
    names = sorted({grp["Keys"][0] for r in res["ResultsByTime"] for grp in r["Groups"]})
    series = {s: [0.0] * len(periods) for s in names}
    for i, r in enumerate(res["ResultsByTime"]):
        for grp in r["Groups"]:
            series[grp["Keys"][0]][i] = float(grp["Metrics"]["UnblendedCost"]["Amount"])
    totals = {s: sum(v) for s, v in series.items()}
    budgets = billing.budgets
    mine = []
    for bud in budgets.list(g.account, g.account.id):
        mine.append({**bud, "Notifications": budgets.notifications(g.account, g.account.id, bud["BudgetName"]),
                     "Actions": budgets.actions(g.account, g.account.id, bud["BudgetName"])})
    try:
        hygiene = billing.hygiene.report([g.account.id])
    except CloudError:
        hygiene = None
    return render_template(
        "billing.html", clock=billing.clock.describe(), prices=billing.prices.current().to_dict()["source"],
        period=(clk.day(a), clk.day(b)), chart=svg_chart(periods, series), legend=list(zip(names, COLOURS * 4)),
        totals=totals, total=sum(totals.values()), top=billing.reports.top_resources(accounts, a, b),
        used=billing.reports.paid_vs_used(accounts, a, b), budgets=mine,
        alerts=budgets.alerts([g.account.id])[:20], hygiene=hygiene, all_accounts=accounts is None)


@bp.post("/budgets")
def create_budget():
    f = request.form
    try:
        limit = f.get("limit", "").strip()
        threshold = float(f.get("threshold") or 100)
        notes = [{"Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                                   "Threshold": threshold, "ThresholdType": "PERCENTAGE"},
                  "Subscribers": [{"SubscriptionType": "EMAIL", "Address": f"{g.account.name}@pocketcloud.local"}]}]
        budgets = cloud().billing.budgets
        budgets.create(g.account, g.account.id, {"BudgetName": f.get("name", "").strip(), "BudgetType": "COST",
                                                 "TimeUnit": f.get("time_unit", "MONTHLY"),
                                                 "BudgetLimit": {"Amount": limit, "Unit": "USD"}}, notes)
        if f.get("stop"):
            try:
                budgets.create_action(g.account, g.account.id, f["name"].strip(), {
                    "ActionType": "RUN_SSM_DOCUMENTS", "NotificationType": "ACTUAL", "ApprovalModel": "AUTOMATIC",
                    "ActionThreshold": {"ActionThresholdValue": 100.0, "ActionThresholdType": "PERCENTAGE"},
                    "Definition": {"SsmActionDefinition": {"ActionSubType": "STOP_EC2_INSTANCES", "InstanceIds": []}}})
            except CloudError:
                budgets.delete(g.account, g.account.id, f["name"].strip())
                raise
        flash(f"Budget {f.get('name')} created.", "ok")
    except ValueError:
        flash("The alert threshold must be a number (percent of the limit).", "error")
    except CloudError as e:
        flash(f"{e} ({e.code})", "error")
    return redirect(url_for("web_billing.page"))


@bp.post("/budgets/<name>/delete")
def delete_budget(name: str):
    # A budget that is not there (or another account's) answers through the app's one
    # error handler: the console's error page with the status the error table gives.
    cloud().billing.budgets.delete(g.account, g.account.id, name)
    flash(f"Budget {name} deleted.", "ok")
    return redirect(url_for("web_billing.page"))


@bp.app_context_processor
def _alert_banner():
    """`billing_alerts()` for base.html: the signed-in account's budget alerts of the last day."""
    def latest(limit: int = 3) -> list[dict]:
        account = g.get("account")
        if account is None:
            return []
        try:
            return cloud().billing.budgets.alerts([account.id], limit=limit, newer_than=time.time() - 86400)
        except CloudError:
            return []
    return {"billing_alerts": latest}


def register(app) -> None:
    app.register_blueprint(bp)
