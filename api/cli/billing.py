"""`pocketcloud bill`, `pocketcloud hygiene` and `pocketcloud lab cost`: the bill, budgets and
alerts, and the waste report, over the REST API like every other CLI command.

Attached in `root` with `register(main, labs.lab)`.
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from .context import client_of as _client
from .context import HelpGroup
from .context import json_mode as _json


def _out(data) -> None:
    click.echo(json.dumps(data, indent=2))


def _table(rows: list[list[str]], heads: list[str], right: set[int] = frozenset()) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    for row in [heads] + rows:
        click.echo("  ".join(v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths)))
                   .rstrip())


def money(x: float) -> str:
    return f"${x:,.2f}" if abs(x) >= 0.01 or x == 0 else f"${x:.4f}"


def qty(x: float, unit: str) -> str:
    return f"{x:,.4g} {unit}" if unit != "N/A" else f"{x:,.4g}"


# -- bill ----------------------------------------------------------------------------------------
@click.group("bill", cls=HelpGroup, invoke_without_command=True)
@click.option("--start", help="YYYY-MM-DD on the billing clock (default: the 1st of this month)")
@click.option("--end", help="YYYY-MM-DD, exclusive (default: the 1st of next month)")
@click.option("--granularity", type=click.Choice(["DAILY", "MONTHLY", "HOURLY"], case_sensitive=False),
              default="DAILY", show_default=True)
@click.option("--group-by", default="SERVICE", show_default=True,
              help="SERVICE, USAGE_TYPE, RESOURCE_ID, INSTANCE_TYPE, PLATFORM, LINKED_ACCOUNT, TAG:KEY, "
                   "comma-separated (two at most), or none")
@click.option("--account", help="an admin: one account's bill (default: every account)")
@click.pass_context
def bill(ctx, start, end, granularity, group_by, account):
    """Your bill so far, on the billing clock (`pocketcloud bill --help`; subcommands below)."""
    if ctx.invoked_subcommand is not None:
        return
    params = {k: v for k, v in {"start": start, "end": end, "granularity": granularity.upper(),
                                "group_by": group_by, "account": account}.items() if v}
    data = _client(ctx).call("GET", "/billing", params=params)
    if _json(ctx):
        return _out(data)
    clock, src = data["clock"], data["prices"]
    click.echo(f"Bill {data['period']['start']} .. {data['period']['end']} (billing clock: {clock['now']}, "
               f"time scale {clock['time_scale']:g}: {clock['meaning']})")
    click.echo(f"Prices: AWS {src['region']} on-demand list, taken {src['taken']}"
               + (f", overridden by {src['override_file']}" if src.get("override_file") else ""))
    rows = [[" / ".join(line["keys"]) or "total", qty(line["quantity"], line["unit"]), money(line["cost"])]
            for line in data["lines"]]
    click.echo("")
    if rows:
        _table(rows, [" / ".join(g["Key"] for g in data["group_by"]) or "TOTAL", "USAGE", "COST"], right={1, 2})
    else:
        click.echo("nothing billed in this period")
    click.echo(f"\nTotal: {money(data['total']['cost'])} USD"
               + (f"   forecast for the period: {money(data['forecast']['end_of_period'])}"
                  if data.get("forecast") else ""))
    top = data.get("top_resources") or []
    if top:
        click.echo("\nTop resources:")
        _table([[t["resource"], t["usage_type"], qty(t["quantity"], t["unit"]), money(t["cost"])] for t in top[:5]],
               ["RESOURCE", "USAGE TYPE", "USAGE", "COST"], right={2, 3})
    used = [p for p in data.get("paid_vs_used") or [] if p.get("cpu_utilisation") is not None]
    if used:
        click.echo("\nPaid for vs used (what the engines measured):")
        _table([[p["instance_id"], p["type"], f"{p['vcpu_hours_paid']:.3g}", f"{p['vcpu_hours_used']:.3g}",
                 f"{100 * p['cpu_utilisation']:.1f}%", f"{p['memory_avg_mib']:.0f}/{p['memory_mib']} MiB"]
                for p in used[:5]], ["INSTANCE", "TYPE", "vCPU-h PAID", "vCPU-h USED", "CPU", "MEMORY avg/size"],
               right={2, 3, 4})
    alerts = _client(ctx).call("GET", "/billing/alerts", params={"account": account} if account else None)["alerts"]
    if alerts:
        click.echo(f"\n{len(alerts)} budget alert(s); the latest: {alerts[0]['message']} "
                   "(`pocketcloud bill alerts`)", err=True)


@bill.command("alerts")
@click.option("--since", type=int, default=0, help="only alerts after this id")
@click.option("--account", help="an admin: one account's alerts")
@click.pass_context
def bill_alerts(ctx, since, account):
    """Budget alerts, newest first."""
    params = {"since": since, **({"account": account} if account else {})}
    data = _client(ctx).call("GET", "/billing/alerts", params=params)
    if _json(ctx):
        return _out(data)
    if not data["alerts"]:
        click.echo("no budget alerts", err=True)
    for a in data["alerts"]:
        click.echo(f"#{a['id']}  {a['fired_on_billing_clock']} (billing clock)  {a['message']}")


@bill.command("budgets")
@click.option("--account", help="an admin: another account's budgets")
@click.pass_context
def bill_budgets(ctx, account):
    """Budgets with their spend so far and forecast."""
    data = _client(ctx).call("GET", "/billing/budgets", params={"account": account} if account else None)
    if _json(ctx):
        return _out(data)
    rows = []
    for b in data["budgets"]:
        spend = b["CalculatedSpend"]
        notes = ", ".join(f"{n['NotificationType'].lower()} {n['Threshold']:g}"
                          f"{'%' if n['ThresholdType'] == 'PERCENTAGE' else '$'}"
                          f"{'!' if n['NotificationState'] == 'ALARM' else ''}" for n in b["Notifications"])
        stop = ", ".join(f"stop at {a['ActionThreshold']['ActionThresholdValue']:g}% ({a['Status'].lower()})"
                         for a in b["Actions"])
        rows.append([b["BudgetName"], b["TimeUnit"].lower(), money(float(b["BudgetLimit"]["Amount"])),
                     money(float(spend["ActualSpend"]["Amount"])), money(float(spend["ForecastedSpend"]["Amount"])),
                     "; ".join(x for x in (notes, stop) if x) or "-"])
    if not rows:
        click.echo("no budgets: `pocketcloud bill budget-create NAME LIMIT`", err=True)
        return
    _table(rows, ["NAME", "PERIOD", "LIMIT", "ACTUAL", "FORECAST", "ALERTS (! = fired)"], right={2, 3, 4})


@bill.command("budget-create")
@click.argument("name")
@click.argument("limit")
@click.option("--period", "time_unit", type=click.Choice(["DAILY", "MONTHLY", "QUARTERLY", "ANNUALLY"],
                                                         case_sensitive=False), default="MONTHLY", show_default=True)
@click.option("--alert", "actual", type=float, multiple=True, help="alert when actual spend passes this % (repeatable)")
@click.option("--forecast", type=float, multiple=True, help="alert when the forecast passes this % (repeatable)")
@click.option("--stop-at", type=float, help="stop the account's running instances when actual spend passes this %")
@click.option("--account", help="an admin: a budget for another account")
@click.pass_context
def bill_budget_create(ctx, name, limit, time_unit, actual, forecast, stop_at, account):
    """Create a cost budget of LIMIT USD per period, with alerts (default: actual > 100%)."""
    notes = [{"type": "ACTUAL", "threshold": t} for t in actual] + [{"type": "FORECASTED", "threshold": t}
                                                                      for t in forecast]
    body = {"name": name, "limit": limit, "time_unit": time_unit.upper(), "notifications": notes or None}
    if stop_at is not None:
        body["stop_instances_at"] = stop_at
    data = _client(ctx).call("POST", "/billing/budgets", json={k: v for k, v in body.items() if v is not None},
                             params={"account": account} if account else None)
    if _json(ctx):
        return _out(data)
    click.echo(f"budget {name}: {money(float(data['BudgetLimit']['Amount']))} {time_unit.lower()}, "
               f"spent {money(float(data['CalculatedSpend']['ActualSpend']['Amount']))} so far")


@bill.command("budget-rm")
@click.argument("name")
@click.option("--account", help="an admin: another account's budget")
@click.pass_context
def bill_budget_rm(ctx, name, account):
    """Delete a budget (its alerts go with it)."""
    _client(ctx).call("DELETE", f"/billing/budgets/{name}", params={"account": account} if account else None)


@bill.command("clock")
@click.argument("time_scale", required=False)
@click.pass_context
def bill_clock(ctx, time_scale):
    """Show the billing clock, or (admin) set its time scale: 60 bills one real minute as an hour."""
    c = _client(ctx)
    data = c.call("PUT", "/billing/settings", json={"time_scale": time_scale}) if time_scale else \
        c.call("GET", "/billing/settings")
    if _json(ctx):
        return _out(data)
    clock = data["clock"]
    click.echo(f"billing clock {clock['now']} (wall clock {clock['wall_clock']}); time scale {clock['time_scale']:g}: "
               f"{clock['meaning']}; metered every {data['meter_interval_seconds']:g}s")


@bill.command("prices")
@click.pass_context
def bill_prices(ctx):
    """The price list in use and where its figures come from."""
    data = _client(ctx).call("GET", "/billing/prices")
    if _json(ctx):
        return _out(data)
    src = data["source"]
    click.echo(f"AWS {src['region']} list prices in {src['currency']}, taken {src['taken']}")
    for page in src["pages"]:
        click.echo(f"  {page}")
    _table([[t, f"${p:g}/hour"] for t, p in data["ec2"]["instance_hour"].items()], ["INSTANCE TYPE", "PRICE"],
           right={1})
    for k, v in (("gp3 volume", f"${data['ebs']['gp3_gb_month']:g}/GiB-month"),
                 ("snapshot", f"${data['ebs']['snapshot_gb_month']:g}/GiB-month"),
                 ("S3 Standard", f"${data['s3']['standard_gb_month']:g}/GiB-month"),
                 ("S3 PUT/COPY/POST/LIST", f"${data['s3']['tier1_per_1000']:g}/1000"),
                 ("S3 GET and others", f"${data['s3']['tier2_per_1000']:g}/1000"),
                 ("data transfer out", f"${data['data_transfer']['out_gb']:g}/GiB")):
        click.echo(f"{k:24}{v}")


# -- hygiene ---------------------------------------------------------------------------------------
@click.command("hygiene")
@click.option("--idle-minutes", type=float, default=10, show_default=True, help="idle = low CPU for this long")
@click.option("--cpu-percent", type=float, default=5, show_default=True, help="below this much of its vCPUs")
@click.option("--untouched-days", type=float, default=30, show_default=True, help="buckets with no request for this long")
@click.option("--snapshot-days", type=float, default=30, show_default=True, help="snapshots older than this")
@click.option("--all", "all_accounts", is_flag=True, help="an admin: every account")
@click.pass_context
def hygiene(ctx, idle_minutes, cpu_percent, untouched_days, snapshot_days, all_accounts):
    """What you pay for and do not use, its monthly cost, and the command that cleans it up."""
    params = {"idle_minutes": idle_minutes, "cpu_percent": cpu_percent, "untouched_days": untouched_days,
              "snapshot_days": snapshot_days}
    me = _client(ctx).call("GET", "/accounts/me")
    if not all_accounts:
        params["account"] = me["id"]
    data = _client(ctx).call("GET", "/billing/hygiene", params=params)
    if _json(ctx):
        return _out(data)
    if not data["items"]:
        click.echo("nothing to clean up", err=True)
    for it in sorted(data["items"], key=lambda i: -i["monthly_cost"]):
        label = it["resource"] + (f" ({it['name']})" if it["name"] and it["name"] != it["resource"] else "")
        click.echo(f"{it['kind']:28} {label}")
        click.echo(f"{'':28} {it['detail']}; {money(it['monthly_cost'])}/month")
        click.echo(f"{'':28} clean up: {it['cleanup']}")
    for note in data["notes"]:
        click.echo(f"note: {note}", err=True)
    if data["items"]:
        click.echo(f"\n{len(data['items'])} item(s), {money(data['monthly_total'])} per month")


# -- lab cost ---------------------------------------------------------------------------------------
@click.command("cost")
@click.option("--type", "itype", default="m5.large", show_default=True,
              help="the instance type every cloud setup runs (the real run launches one)")
@click.option("--peak-vcpus", type=float, default=8, show_default=True, help="vCPUs the daily peak needs")
@click.option("--peak-hours", type=float, default=3, show_default=True, help="hours of peak load per day")
@click.option("--base", type=float, default=0.1, show_default=True, help="off-peak load, as a fraction of the peak")
@click.option("--server-price", type=float, default=3000.0, show_default=True,
              help="owned server sized for the peak: purchase USD")
@click.option("--server-months", type=int, default=36, show_default=True, help="owned server: amortised over")
@click.option("--server-watts", type=float, default=150.0, show_default=True, help="owned server: average power")
@click.option("--kwh-price", type=float, default=0.30, show_default=True, help="USD per kWh")
@click.option("--run-seconds", type=float, default=12.0, show_default=True, help="length of the real measuring run")
@click.option("--hour-seconds", type=float, default=2.0, show_default=True,
              help="real seconds per hour of the Auto Scaling group's compressed day")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("lab-cost"), show_default=True)
@click.pass_context
def lab_cost(ctx, itype, peak_vcpus, peak_hours, base, server_price, server_months, server_watts, kwh_price,
             run_seconds, hour_seconds, out):
    """The same daily-peak workload three ways for a simulated month: always-on instances sized
    for the peak, a real Auto Scaling group following the load through a compressed day, and an
    owned server; a report and a chart of cost vs utilisation."""
    import importlib.util

    from emulator.billing.costlab import OwnedServer, Workload

    from . import lab_cost as labs

    if importlib.util.find_spec("matplotlib") is None:
        raise click.ClickException("the lab draws its chart with matplotlib: pip install 'pocketcloud[labs]'")
    if not 0 <= base <= 1 or not 0 < peak_hours <= 24 or peak_vcpus <= 0:
        raise click.BadParameter("need 0 <= --base <= 1, 0 < --peak-hours <= 24 and --peak-vcpus > 0")
    if not 0.5 <= hour_seconds <= 60 or not 1 <= run_seconds <= 600:
        raise click.BadParameter("need 0.5 <= --hour-seconds <= 60 and 1 <= --run-seconds <= 600")
    res = labs.run(_client(ctx), out, Workload(peak_vcpus=peak_vcpus, peak_hours=peak_hours, base=base),
                   itype=itype, owned=OwnedServer(server_price, server_months, server_watts, kwh_price),
                   run_seconds=run_seconds, hour_seconds=hour_seconds, progress=lambda m: None if _json(ctx) else click.echo(m, err=True))
    if _json(ctx):
        return _out(res)
    click.echo(res["table"])
    click.echo(f"report: {res['report']}  chart: {res['chart']}", err=True)


def register(main: click.Group, lab: click.Group | None = None) -> None:
    main.add_command(bill)
    main.add_command(hygiene)
    if lab is not None:
        lab.add_command(lab_cost)
