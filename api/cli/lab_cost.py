"""`pocketcloud lab cost`: is the cloud cheaper? The same daily-peak workload three ways for a
simulated month, like a student script over the public API:

1. a short real run measures what the meter does with an always-on instance: one instance of
   the type, every vCPU busy for half the run, idle after, then the bill for it (billed hours,
   cost per hour against the price list, CPU the engine saw);
2. a real Auto Scaling group runs a compressed day (24 hours of `hour_seconds` each): a launch
   template, a group of containers of the same type, its desired capacity set at each hour to
   the plan (target tracking's rule applied to the day's forecast load: a scheduled scale-out
   for the peak and scale-in after, as `put-scheduled-update-group-action` would; pocketcloud
   has no scheduled actions, so the lab is the scheduler, through the same API). The lab
   samples what the group really runs (launch and termination delays included) and reads the
   meter's bill for every instance the group launched;
3. the month is extrapolated from the meter's rules (emulator.billing.costlab), not waited out:
   always-on, the measured group's day repeated, and an owned server (purchase amortised, plus power);
4. a chart (a day's load and capacity; monthly cost against utilisation) and a Markdown report.
"""
from __future__ import annotations

import math
import re
import secrets
import time
from pathlib import Path
from typing import Callable

from emulator.billing.costlab import (HOURS, AutoscaledSetup, MeasuredGroup, OwnedServer, TargetTracking, Workload,
                                      crossover, month, sweep)

from .client import ApiError, Client
from .labs import save_lab

Progress = Callable[[str], None]
SAMPLE = 0.25
DRAIN_TIMEOUT = 90.0  # to fill or drain a group of containers
LAUNCHED = re.compile(r"^Launching a new EC2 instance: (i-[0-9a-f]+)$")


def _used(client: Client, start_day: str, iid: str) -> dict:
    bill = client.call("GET", "/billing", params={"start": start_day, "group_by": "RESOURCE_ID"})
    return next((p for p in bill["paid_vs_used"] if p["instance_id"] == iid), {})


def measure(client: Client, itype: str, vcpus: int, seconds: float, progress: Progress) -> dict:
    """Run one instance through a compressed day and read what the meter billed for it."""
    settings = client.call("GET", "/billing/settings")
    start_day, interval = settings["clock"]["now"][:10], settings["meter_interval_seconds"]
    progress(f"real run: one {itype} container, {seconds / 2:g}s at peak (all {vcpus} vCPUs busy), "
             f"{seconds / 2:g}s idle")
    inst = client.call("POST", "/instances", json={"image": "tiny", "type": itype, "name": "lab-cost",
                                                   "tags": {"lab": "cost"}})
    started = time.monotonic()  # billing starts when it is running, not when it was asked for
    iid = inst["id"]
    try:
        # The engine is sampled once a metering pass: start the day once it has been looked at,
        # and end it after one more pass, so what the engine saw covers the whole day.
        deadline = time.monotonic() + 4 * interval + 10
        while not _used(client, start_day, iid).get("measured_seconds") and time.monotonic() < deadline:
            time.sleep(min(0.5, interval))
        day = time.monotonic()
        burn = int(max(1, seconds / 2))
        loops = " ".join(f"(timeout {burn} sh -c 'while :; do :; done' &);" for _ in range(vcpus))
        client.call("POST", f"/instances/{iid}/exec", json={"command": ["sh", "-c", f"{loops} sleep {burn}"],
                                                             "timeout": burn + 30})
        time.sleep(max(0.0, seconds - (time.monotonic() - day)) + interval + 0.5)
    finally:
        ran = time.monotonic() - started
        client.call("DELETE", f"/instances/{iid}")
    bill = client.call("GET", "/billing", params={"start": start_day, "granularity": "MONTHLY",
                                                  "group_by": "RESOURCE_ID"})
    line = next((x for x in bill["lines"] if x["keys"] == [iid]), None)
    used = next((p for p in bill["paid_vs_used"] if p["instance_id"] == iid), {})
    if line is None:
        raise ApiError(0, "NotMetered", f"the meter billed nothing for {iid}: is the server's meter running?")
    return {"instance_id": iid, "type": itype, "real_seconds": round(ran, 2),
            "time_scale": bill["clock"]["time_scale"], "billed_hours": round(line["quantity"], 6),
            "cost": round(line["cost"], 6), "rate_per_hour": round(line["cost"] / line["quantity"], 6),
            "cpu_utilisation": used.get("cpu_utilisation"), "measured_seconds": used.get("measured_seconds")}


def _bill_lines(client: Client, start_day: str, ids: set[str]) -> tuple[dict, list[dict]]:
    bill = client.call("GET", "/billing", params={"start": start_day, "granularity": "MONTHLY",
                                                  "group_by": "RESOURCE_ID"})
    return bill, [x for x in bill["lines"] if x["keys"] and x["keys"][0] in ids]


def hourly(samples: list[tuple[float, int]], t0: float, hour_s: float) -> list[float]:
    """Average instances running in each compressed hour: a sample's count holds until the next one."""
    out = [0.0] * HOURS
    for (t, n), (t2, _) in zip(samples, samples[1:]):
        for h in range(HOURS):
            lo, hi = t0 + h * hour_s, t0 + (h + 1) * hour_s
            out[h] += n * max(0.0, min(t2, hi) - max(t, lo))
    return [round(x / hour_s, 3) for x in out]


def measure_group(client: Client, itype: str, plan: list[int], hour_s: float, start_day: str,
                  progress: Progress) -> dict:
    """Run a real Auto Scaling group through a compressed day on the plan's schedule; return what
    it ran per hour and what the meter billed for its instances."""
    name = f"lab-cost-{time.strftime('%H%M%S')}-{secrets.token_hex(2)}"
    progress(f"real Auto Scaling group {name}: {itype} containers through a compressed day of {HOURS} x "
             f"{hour_s:g}s, desired capacity per hour {plan}")
    samples: list[tuple[float, int]] = []
    ids: set[str] = set()
    made_template = made_group = False

    def look() -> dict:
        grp = client.call("GET", f"/groups/{name}")
        ids.update(m["id"] for m in grp["members"])
        samples.append((time.time(), sum(1 for m in grp["members"] if m["state"] == "running")))
        return grp

    try:
        client.call("POST", "/launch-templates", json={"name": name, "image": "tiny", "kind": "container",
                                                       "type": itype})
        made_template = True
        client.call("POST", "/groups", json={"name": name, "launch_template": {"name": name}, "min": 0,
                                             "max": max(plan), "desired": plan[0], "tags": {"lab": "cost"}})
        made_group = True
        # The day starts as a repeated day would: with the previous night's instances running.
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while look() and samples[-1][1] < plan[0]:
            if time.monotonic() > deadline:
                raise ApiError(0, "Timeout", f"group {name} did not reach {plan[0]} running within "
                                             f"{DRAIN_TIMEOUT:.0f}s")
            time.sleep(SAMPLE)
        t0, desired = time.time(), plan[0]
        while (h := int((time.time() - t0) // hour_s)) < HOURS:
            if plan[h] != desired:
                client.call("PATCH", f"/groups/{name}", json={"desired": plan[h]})
                desired = plan[h]
            look()
            next_hour = t0 + (h + 1) * hour_s
            time.sleep(max(0.0, min(SAMPLE, next_hour - time.time())))
        progress("  end of the day: desired 0, the group drains")
        client.call("PATCH", f"/groups/{name}", json={"desired": 0})
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while look()["members"]:
            if time.monotonic() > deadline:
                raise ApiError(0, "Timeout", f"group {name} did not drain within {DRAIN_TIMEOUT:.0f}s")
            time.sleep(SAMPLE)
        activities = client.call("GET", f"/groups/{name}/activities", params={"limit": 1000})["activities"]
        ids.update(m.group(1) for a in activities if (m := LAUNCHED.match(a["description"])))
    finally:
        if made_group:
            try:
                client.call("DELETE", f"/groups/{name}", params={"force": "true"})
                deadline = time.monotonic() + DRAIN_TIMEOUT
                while name in [g["name"] for g in client.call("GET", "/groups")["groups"]] \
                        and time.monotonic() < deadline:
                    time.sleep(SAMPLE)
            except ApiError as e:
                progress(f"  clean-up of group {name} failed: {e.message}")
        if made_template:
            try:
                client.call("DELETE", f"/launch-templates/{name}")
            except ApiError as e:
                progress(f"  clean-up of launch template {name} failed: {e.message}")
    bill, lines = _bill_lines(client, start_day, ids)
    billed_hours = sum(x["quantity"] for x in lines)
    cost = sum(x["cost"] for x in lines)
    instance_seconds = sum(n * (t2 - t) for (t, n), (t2, _) in zip(samples, samples[1:]))
    scale = bill["clock"]["time_scale"]
    counts = hourly(samples, t0, hour_s)
    progress(f"  ran {counts} instances per hour; the meter billed {billed_hours:.4f} instance-hours for "
             f"{len(ids)} instances")
    return {"group": name, "hour_seconds": hour_s, "plan": plan, "hourly": counts, "instances_launched": len(ids),
            "instance_ids": sorted(ids), "time_scale": scale, "sampled_instance_seconds": round(instance_seconds, 2),
            "sampled_billed_hours": round(instance_seconds * scale / 3600, 6),
            "billed_hours": round(billed_hours, 6), "cost": round(cost, 6),
            "rate_per_hour": round(cost / billed_hours, 6) if billed_hours else None}


def chart(path: Path, result: dict, points: list[dict], vcpus: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (day, cost) = plt.subplots(1, 2, figsize=(13, 4.8))
    hours = list(range(25))
    demand = result["demand"] + result["demand"][-1:]
    setups = result["setups"]
    day.fill_between(hours, demand, step="post", alpha=0.3, color="tab:gray", label="load (vCPUs needed)")
    for name, colour, label in (("always-on", "tab:red", "always-on capacity"),
                                ("autoscaled", "tab:blue", "Auto Scaling group: capacity it really ran")):
        cap = [n * vcpus for n in setups[name]["instances"]]
        day.step(hours, cap + cap[-1:], where="post", color=colour, label=label)
    plan = [n * vcpus for n in result["plan"]]
    day.step(hours, plan + plan[-1:], where="post", color="tab:blue", linestyle=":", alpha=0.7,
             label="its schedule (desired capacity)")
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
        owned: OwnedServer, run_seconds: float = 12.0, hour_seconds: float = 2.0,
        plan: AutoscaledSetup | None = None, progress: Progress = print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    types = {t["name"]: t for t in client.call("GET", "/instance-types")["instance_types"]}
    if itype not in types:
        raise ApiError(0, "InvalidInstanceType", f"unknown instance type {itype}; see `pocketcloud instances types`")
    vcpus = types[itype]["vcpus"]
    prices = client.call("GET", "/billing/prices")
    price = prices["ec2"]["instance_hour"].get(itype, 0.0)
    start_day = client.call("GET", "/billing/settings")["clock"]["now"][:10]
    measured = measure(client, itype, vcpus, run_seconds, progress)
    # The group's max is what the always-on setup buys for the peak; it runs the same type, so
    # the three setups compare at equal capacity.
    plan = plan or TargetTracking(itype, max_size=max(1, math.ceil(workload.peak_vcpus / vcpus - 1e-9)))
    demand = workload.demand()
    schedule = [int(n) for n in plan.capacity(demand, vcpus)]
    group = measure_group(client, itype, schedule, hour_seconds, start_day, progress)
    autoscaled = MeasuredGroup(itype, plan, tuple(demand), tuple(group["hourly"]), group=group["group"])
    kw = {"price_per_hour": price, "vcpus": vcpus, "owned": owned, "autoscaled": autoscaled}
    result = month(workload, **kw)
    result["peak_vcpus"] = workload.peak_vcpus
    result["plan"] = schedule
    points = sweep(workload, **kw)
    auto_vs_owned = crossover(points, "autoscaled", "owned")
    always_vs_owned = crossover(points, "always-on", "owned")
    setups = result["setups"]
    table = "\n".join(
        [f"{'setup':12} {'USD/month':>10} {'utilisation':>12}"]
        + [f"{name:12} {s['cost']:>10.2f} {100 * s['utilisation']:>11.0f}%" for name, s in setups.items()])
    data = {"workload": workload.__dict__, "type": itype, "price_per_hour": price, "measured": measured,
            "group": group, "autoscaled_hourly": group["hourly"], "schedule": schedule,
            "month": {k: {kk: vv for kk, vv in v.items() if kk != "instances"} for k, v in setups.items()},
            "autoscaled_how": autoscaled.how, "sweep": points,
            "owned_cheaper_than_autoscaled_above": auto_vs_owned,
            "owned_cheaper_than_always_on_above": always_vs_owned,
            "table": table, "report": str(out / "report.md"), "chart": str(out / "cost.png")}
    save_lab(out, data, json_name="cost.json", chart_name="cost.png", report_name="report.md",
             chart=lambda path: chart(path, result, points, vcpus),
             report=lambda chart_name: _report(workload, itype, price, owned, autoscaled, measured, group, prices,
                                               result, table, auto_vs_owned, always_vs_owned, chart_name))
    return data


def _pct(x: float | None) -> str:
    return "never, in this sweep" if x is None else f"{100 * x:.0f}%"


def _from(x: float | None) -> str:
    if x is None:
        return "at no utilisation in this sweep"
    return "at any utilisation" if x == 0 else f"above {100 * x:.0f}% average utilisation"


def _group_section(g: dict, itype: str, price: float) -> str:
    ran = sum(g["hourly"])
    planned = sum(g["plan"])
    agree = (f"{100 * g['billed_hours'] / g['sampled_billed_hours']:.0f}% of what the lab's samples of running "
             f"members give ({g['sampled_billed_hours']:.4f})") if g["sampled_billed_hours"] else "nothing sampled"
    rate = f"${g['rate_per_hour']:.4f}" if g["rate_per_hour"] is not None else "-"
    return f"""## The autoscaled setup: a real Auto Scaling group

Auto Scaling group `{g['group']}` ({itype} containers from a launch template) ran a compressed day of
24 hours of {g['hour_seconds']:g} s each, its desired capacity set at each hour to the schedule
`{g['plan']}` ({planned} instance-hours planned). What it really kept running, per hour:
`{g['hourly']}`: {ran:.2f} instance-hours, launch and termination delays included. It launched
{g['instances_launched']} instances; the meter billed {g['billed_hours']:.4f} instance-hours for them at time
scale {g['time_scale']:g}, ${g['cost']:.6f}, i.e. {rate} per hour (list: ${price:g}); that is {agree}
(AWS bills at least 60 s per start, which shows at low time scales)."""


def _report(w, itype, price, owned, auto, m, g, prices, result, table, auto_vs_owned, always_vs_owned, chart) -> str:
    return f"""# Is the cloud cheaper? (pocketcloud lab cost)

Workload: {w.peak_vcpus:g} vCPUs at the peak for {w.peak_hours:g} h a day, {100 * w.base:.0f}% of that the rest of the
day: average utilisation of the peak capacity {100 * result['average_utilisation']:.0f}%.
Prices: AWS {prices['source']['region']} list, taken {prices['source']['taken']}: {itype} at ${price:g}/hour.

## What the meter did (a real run)

One {itype} container ran {m['real_seconds']:g} s of wall-clock time at time scale {m['time_scale']:g}: the meter
billed {m['billed_hours']:.4f} instance-hours, ${m['cost']:.6f}, i.e. ${m['rate_per_hour']:.4f} per hour
(the price list says ${price:g}). The engine measured {_pct(m['cpu_utilisation'])} CPU over its {m['measured_seconds'] or 0:g} s watched (all vCPUs busy half of it): an
instance is paid for by the hour, busy or idle.

{_group_section(g, itype, price)}

## A simulated month ({result['days']} days, priced by the meter's rules)

```
{table}
```

- always-on: enough {itype} for the peak, all month;
- autoscaled: {itype} instances following the load: {auto.how}; the measured day, thirty times, leaving
  {result["setups"]["autoscaled"]["unserved_vcpu_hours"]:.1f} vCPU-hours of load unserved, while instances launched or at its max (the
  sweep's other peak widths, never run, take the schedule's rule);
- owned: ${owned.price:g} amortised over {owned.months} months plus {owned.watts:g} W at ${owned.kwh_price:g}/kWh.

The owned server is cheaper than the autoscaled group {_from(auto_vs_owned)}, and cheaper than the
always-on instances {_from(always_vs_owned)}: pay-per-use wins when the normal load is far below the
peak ("it depends on your normal vs peak utilisation"); fully used hardware is cheaper to own.

![cost]({chart})
"""
