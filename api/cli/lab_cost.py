"""`pocketcloud lab cost`: is the cloud cheaper? The same daily-peak workload three ways for a
simulated month, like a student script over the public API:

1. a short real run measures what the meter does with an always-on instance: one instance of
   the type, a compressed day (every vCPU busy for the peak, idle after), then the bill for it
   (billed hours, cost per hour against the price list, CPU the engine saw);
2. the month is extrapolated from the meter's rules (emulator.billing.costlab), not waited out:
   always-on, autoscaled (by rule until Auto Scaling exists, see costlab.AutoscaledSetup) and an
   owned server (purchase amortised, plus power);
3. a chart (a day's load and capacity; monthly cost against utilisation) and a Markdown report.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

from emulator.billing.costlab import AutoscaledSetup, OwnedServer, TargetTracking, Workload, crossover, month, sweep

from .client import ApiError, Client

Progress = Callable[[str], None]


def measure(client: Client, itype: str, vcpus: int, seconds: float, progress: Progress) -> dict:
    """Run one instance through a compressed day and read what the meter billed for it."""
    start_day = client.call("GET", "/billing/settings")["clock"]["now"][:10]
    progress(f"real run: one {itype} container, {seconds / 2:g}s at peak (all {vcpus} vCPUs busy), "
             f"{seconds / 2:g}s idle")
    inst = client.call("POST", "/instances", json={"image": "tiny", "type": itype, "name": "lab-cost",
                                                   "tags": {"lab": "cost"}})
    started = time.monotonic()  # billing starts when it is running, not when it was asked for
    iid = inst["id"]
    try:
        burn = int(max(1, seconds / 2))
        loops = " ".join(f"(timeout {burn} sh -c 'while :; do :; done' &);" for _ in range(vcpus))
        client.call("POST", f"/instances/{iid}/exec", json={"command": ["sh", "-c", f"{loops} sleep {burn}"],
                                                             "timeout": burn + 30})
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    finally:
        ran = time.monotonic() - started
        client.call("DELETE", f"/instances/{iid}")
    time.sleep(2.5)  # let the meter read the last engine samples
    bill = client.call("GET", "/billing", params={"start": start_day, "granularity": "MONTHLY",
                                                  "group_by": "RESOURCE_ID"})
    line = next((x for x in bill["lines"] if x["keys"] == [iid]), None)
    used = next((p for p in bill["paid_vs_used"] if p["instance_id"] == iid), {})
    if line is None:
        raise ApiError(0, "NotMetered", f"the meter billed nothing for {iid}: is the server's meter running?")
    return {"instance_id": iid, "type": itype, "real_seconds": round(ran, 2),
            "time_scale": bill["clock"]["time_scale"], "billed_hours": round(line["quantity"], 6),
            "cost": round(line["cost"], 6), "rate_per_hour": round(line["cost"] / line["quantity"], 6),
            "cpu_utilisation": used.get("cpu_utilisation")}


def chart(path: Path, result: dict, points: list[dict], vcpus: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (day, cost) = plt.subplots(1, 2, figsize=(13, 4.8))
    hours = list(range(25))
    demand = result["demand"] + result["demand"][-1:]
    setups = result["setups"]
    day.fill_between(hours, demand, step="post", alpha=0.3, color="tab:gray", label="load (vCPUs needed)")
    for name, colour in (("always-on", "tab:red"), ("autoscaled", "tab:blue")):
        cap = [n * vcpus for n in setups[name]["instances"]]
        day.step(hours, cap + cap[-1:], where="post", color=colour, label=f"{name} capacity")
    day.axhline(result["peak_vcpus"], color="tab:green", linestyle="--", label="owned server")
    day.set(xlabel="hour of the simulated day", ylabel="vCPUs", title="One day: load and what is paid for",
            xlim=(0, 24))
    day.legend(loc="upper left", fontsize=8)
    xs = [100 * p["average_utilisation"] for p in points]
    for name, colour in (("always-on", "tab:red"), ("autoscaled", "tab:blue"), ("owned", "tab:green")):
        cost.plot(xs, [p[name] for p in points], marker=".", color=colour, label=name)
    cost.axvline(100 * result["average_utilisation"], color="black", linestyle=":", label="this workload")
    cost.set(xlabel="average utilisation of the peak capacity (%)", ylabel="USD per month",
             title="A month: cost against utilisation (peak widening to all day)")
    cost.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(client: Client, out: Path, workload: Workload, *, itype: str,
        owned: OwnedServer, run_seconds: float = 12.0, autoscaled: AutoscaledSetup | None = None,
        progress: Progress = print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    types = {t["name"]: t for t in client.call("GET", "/instance-types")["instance_types"]}
    if itype not in types:
        raise ApiError(0, "InvalidInstanceType", f"unknown instance type {itype}; see `pocketcloud instances types`")
    vcpus = types[itype]["vcpus"]
    prices = client.call("GET", "/billing/prices")
    price = prices["ec2"]["instance_hour"].get(itype, 0.0)
    measured = measure(client, itype, vcpus, run_seconds, progress)
    # An Auto Scaling group's max is what the always-on setup buys for the peak.
    autoscaled = autoscaled or TargetTracking(itype,
                                              max_size=max(1, math.ceil(workload.peak_vcpus / vcpus - 1e-9)))
    # The group runs the same type as the always-on setup, so the three compare at equal capacity.
    kw = {"price_per_hour": price, "vcpus": vcpus, "owned": owned, "autoscaled": autoscaled}
    result = month(workload, **kw)
    result["peak_vcpus"] = workload.peak_vcpus
    points = sweep(workload, **kw)
    chart_path = out / "cost.png"
    chart(chart_path, result, points, vcpus)
    auto_vs_owned = crossover(points, "autoscaled", "owned")
    always_vs_owned = crossover(points, "always-on", "owned")
    setups = result["setups"]
    table = "\n".join(
        [f"{'setup':12} {'USD/month':>10} {'utilisation':>12}"]
        + [f"{name:12} {s['cost']:>10.2f} {100 * s['utilisation']:>11.0f}%" for name, s in setups.items()])
    report = out / "report.md"
    report.write_text(_report(workload, itype, price, owned, autoscaled, measured, prices, result, table,
                              auto_vs_owned, always_vs_owned, chart_path.name))
    data = {"workload": workload.__dict__, "type": itype, "price_per_hour": price, "measured": measured,
            "month": {k: {kk: vv for kk, vv in v.items() if kk != "instances"} for k, v in setups.items()},
            "autoscaled_how": autoscaled.how, "sweep": points,
            "owned_cheaper_than_autoscaled_above": auto_vs_owned,
            "owned_cheaper_than_always_on_above": always_vs_owned,
            "table": table, "report": str(report), "chart": str(chart_path)}
    (out / "cost.json").write_text(json.dumps(data, indent=2))
    return data


def _pct(x: float | None) -> str:
    return "never, in this sweep" if x is None else f"{100 * x:.0f}%"


def _from(x: float | None) -> str:
    if x is None:
        return "at no utilisation in this sweep"
    return "at any utilisation" if x == 0 else f"above {100 * x:.0f}% average utilisation"


def _report(w, itype, price, owned, auto, m, prices, result, table, auto_vs_owned, always_vs_owned, chart) -> str:
    return f"""# Is the cloud cheaper? (pocketcloud lab cost)

Workload: {w.peak_vcpus:g} vCPUs at the peak for {w.peak_hours:g} h a day, {100 * w.base:.0f}% of that the rest of the
day: average utilisation of the peak capacity {100 * result['average_utilisation']:.0f}%.
Prices: AWS {prices['source']['region']} list, taken {prices['source']['taken']}: {itype} at ${price:g}/hour.

## What the meter did (a real run)

One {itype} container ran {m['real_seconds']:g} s of wall-clock time at time scale {m['time_scale']:g}: the meter
billed {m['billed_hours']:.4f} instance-hours, ${m['cost']:.6f}, i.e. ${m['rate_per_hour']:.4f} per hour
(the price list says ${price:g}). The engine measured {_pct(m['cpu_utilisation'])} CPU over the run: an
instance is paid for by the hour, busy or idle.

## A simulated month ({result['days']} days, priced by the meter's rules)

```
{table}
```

- always-on: enough {itype} for the peak, all month;
- autoscaled: {itype} instances following the load, {auto.how};
- owned: ${owned.price:g} amortised over {owned.months} months plus {owned.watts:g} W at ${owned.kwh_price:g}/kWh.

The owned server is cheaper than the autoscaled group {_from(auto_vs_owned)}, and cheaper than the
always-on instances {_from(always_vs_owned)}: pay-per-use wins when the normal load is far below the
peak ("it depends on your normal vs peak utilisation"); fully used hardware is cheaper to own.

![cost]({chart})
"""
