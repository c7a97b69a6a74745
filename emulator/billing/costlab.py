"""The model behind `pocketcloud lab cost`: one workload with a daily peak, run three ways for
a simulated month, priced by the meter's rules (per-second instance-hours at the price list's
rates; an owned server's purchase amortised plus its power).

    always-on   enough instances of one type for the peak, all month
    autoscaled  instances of the same type following the load (an AutoscaledSetup)
    owned       one server bought for the peak, amortised, plus electricity

`AutoscaledSetup` is the seam for Auto Scaling (issue 16): `TargetTracking` applies target
tracking on average CPU by rule (instances = ceil(demand / (vCPUs x target)), reacting after
`lag_hours`); `MeasuredGroup` is what a real Auto Scaling group ran through a compressed day
(the lab drives one, api/cli/lab_cost.py): the instances it really kept running in each hour,
launch delays included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

HOURS = 24


@dataclass(frozen=True)
class Workload:
    """Load over a day in vCPUs: `base` x peak most of the day, the full peak for
    `peak_hours` hours (centred on `peak_at` o'clock)."""
    peak_vcpus: float = 8.0
    peak_hours: float = 3.0
    base: float = 0.1
    peak_at: float = 19.0

    def demand(self) -> list[float]:
        out = []
        half = self.peak_hours / 2
        for h in range(HOURS):
            # the share of hour h inside the peak window [peak_at - half, peak_at + half)
            inside = 0.0
            for shift in (-HOURS, 0, HOURS):
                lo, hi = self.peak_at - half + shift, self.peak_at + half + shift
                inside += max(0.0, min(h + 1, hi) - max(h, lo))
            inside = min(1.0, inside)
            out.append(self.peak_vcpus * (self.base + (1 - self.base) * inside))
        return out

    def average_utilisation(self) -> float:
        return sum(self.demand()) / (HOURS * self.peak_vcpus)


class AutoscaledSetup(Protocol):
    name: str
    instance_type: str
    how: str

    def capacity(self, demand: list[float], vcpus: int) -> list[float]:
        """Instances running in each hour of the day for that demand (an average where measured)."""


@dataclass(frozen=True)
class TargetTracking:
    instance_type: str
    target: float = 0.7
    min_size: int = 1
    max_size: int | None = None
    lag_hours: int = 0
    name: str = "autoscaled"

    @property
    def how(self) -> str:
        return (f"simulated by rule: target tracking at {self.target:.0%} average CPU, min {self.min_size}"
                + (f", max {self.max_size}" if self.max_size else "") + f", reacting after {self.lag_hours} h")

    def capacity(self, demand: list[float], vcpus: int) -> list[int]:
        want = [max(self.min_size, math.ceil(d / (vcpus * self.target) - 1e-9)) for d in demand]
        if self.max_size:
            want = [min(self.max_size, n) for n in want]
        return [want[(h - self.lag_hours) % HOURS] for h in range(HOURS)]


@dataclass(frozen=True)
class MeasuredGroup:
    """A real group's day: `measured[h]` is the average number of instances it kept running in
    hour h of a compressed day run under `demand`, following `plan`'s schedule. For that demand
    the measured counts are the capacity; for any other (the sweep's wider peaks, never run)
    the plan's rule stands in, since nothing was measured there."""
    instance_type: str
    plan: TargetTracking
    demand: tuple[float, ...]
    measured: tuple[float, ...]
    group: str = ""
    name: str = "autoscaled"

    @property
    def how(self) -> str:
        return (f"a real Auto Scaling group{f' ({self.group})' if self.group else ''} measured through a compressed "
                f"day, its desired capacity set each hour to the plan ({self.plan.how.removeprefix('simulated by rule: ')})")

    def capacity(self, demand: list[float], vcpus: int) -> list[float]:
        if len(demand) == len(self.demand) and all(math.isclose(a, b) for a, b in zip(demand, self.demand)):
            return list(self.measured)
        return self.plan.capacity(demand, vcpus)


@dataclass(frozen=True)
class OwnedServer:
    price: float = 3000.0
    months: int = 36
    watts: float = 150.0
    kwh_price: float = 0.30

    def monthly(self, hours: float) -> float:
        return self.price / self.months + self.watts * hours / 1000 * self.kwh_price


def month(workload: Workload, *, price_per_hour: float, vcpus: int, owned: OwnedServer,
          autoscaled: AutoscaledSetup, days: int = 30) -> dict:
    """Cost and utilisation of the three setups over `days` simulated days."""
    demand = workload.demand()
    used = sum(demand) * days
    always_n = max(1, math.ceil(workload.peak_vcpus / vcpus - 1e-9))
    auto = autoscaled.capacity(demand, vcpus)
    hours = HOURS * days
    rows = {
        "always-on": {"instances": [always_n] * HOURS, "cost": always_n * price_per_hour * hours,
                      "provisioned_vcpu_hours": always_n * vcpus * hours},
        "autoscaled": {"instances": auto, "cost": sum(auto) * days * price_per_hour,
                       "provisioned_vcpu_hours": sum(auto) * vcpus * days,
                       "unserved_vcpu_hours": sum(max(0.0, d - n * vcpus) for d, n in zip(demand, auto)) * days},
        "owned": {"instances": None, "cost": owned.monthly(hours),
                  "provisioned_vcpu_hours": workload.peak_vcpus * hours},
    }
    for r in rows.values():
        r["utilisation"] = min(1.0, used / r["provisioned_vcpu_hours"]) if r["provisioned_vcpu_hours"] else 0.0
        r["cost"] = round(r["cost"], 4)
    return {"days": days, "demand": demand, "used_vcpu_hours": used,
            "average_utilisation": workload.average_utilisation(), "setups": rows}


def sweep(workload: Workload, **kw) -> list[dict]:
    """The same comparison as the peak widens from 1 hour to all day (utilisation rising)."""
    out = []
    for peak in range(1, HOURS + 1):
        w = Workload(workload.peak_vcpus, float(peak), workload.base, workload.peak_at)
        m = month(w, **kw)
        out.append({"peak_hours": peak, "average_utilisation": m["average_utilisation"],
                    **{k: v["cost"] for k, v in m["setups"].items()}})
    return out


def crossover(points: list[dict], a: str, b: str) -> float | None:
    """The average utilisation from which `b` is cheaper than `a`: 0.0 when it always is,
    None when it never is."""
    for i, p in enumerate(points):
        if p[b] < p[a]:
            return 0.0 if i == 0 else p["average_utilisation"]
    return None
