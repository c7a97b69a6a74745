"""Bills read from the usage rows: Cost Explorer's GetCostAndUsage and GetCostForecast
semantics (periods on the billing clock, metrics, GROUP BY dimension or tag, filter
expressions), the top resources, and paid-for vs used (the engines' real usage)."""
from __future__ import annotations

import json
from typing import Callable

from ..errors import InvalidParameter
from . import clock as clk
from . import ledger
from .clock import BillingClock

COST_METRICS = ("UnblendedCost", "BlendedCost", "AmortizedCost", "NetUnblendedCost", "NetAmortizedCost")
METRICS = COST_METRICS + ("UsageQuantity",)
GRANULARITIES = ("DAILY", "MONTHLY", "HOURLY")
HOURLY_DAYS = 14
MAX_GROUPS = 2
USAGE_GROUPS = {
    ledger.VOLUME_USAGE: "EC2: EBS - SSD(gp3)", ledger.SNAPSHOT_USAGE: "EC2: EBS - Snapshots",
    ledger.TRANSFER_OUT: "EC2: Data Transfer - Internet (Out)", ledger.S3_STORAGE: "S3: Storage - Standard",
    ledger.S3_TIER1: "S3: API Requests - Standard", ledger.S3_TIER2: "S3: API Requests - Standard",
}


def _attr(key: str, default: str = "") -> Callable[[dict], str]:
    return lambda r: r["attrs"].get(key) or default


DIMENSIONS: dict[str, Callable[[dict], str]] = {
    "SERVICE": lambda r: r["service"],
    "USAGE_TYPE": lambda r: r["usage_type"],
    "USAGE_TYPE_GROUP": lambda r: ("EC2: Running Hours" if r["usage_type"].startswith(ledger.BOX_USAGE)
                                   else USAGE_GROUPS.get(r["usage_type"], "")),
    "LINKED_ACCOUNT": lambda r: r["account"],
    "INSTANCE_TYPE": _attr("instance_type", "NoInstanceType"),
    "PLATFORM": _attr("platform"),
    "OPERATION": _attr("operation"),
    "REGION": _attr("region"),
    "RECORD_TYPE": lambda r: "Usage",
    "PURCHASE_TYPE": lambda r: "On Demand Instances" if r["usage_type"].startswith(ledger.BOX_USAGE) else "",
    "RESOURCE_ID": lambda r: r["resource"],
}
MATCH_OPTIONS = {"EQUALS", "ABSENT", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "CASE_SENSITIVE", "CASE_INSENSITIVE",
                 "GREATER_THAN_OR_EQUAL"}


def invalid(message: str) -> InvalidParameter:
    return InvalidParameter(message, code="ValidationException")


def amount(x: float) -> str:
    return f"{x:.10f}".rstrip("0").rstrip(".") if x else "0"


# -- filter expressions --------------------------------------------------------------------
def compile_filter(expr, depth: int = 0) -> Callable[[dict], bool]:
    """Cost Explorer's Expression: exactly one of And, Or, Not, Dimensions, Tags per node."""
    if not isinstance(expr, dict):
        raise invalid("Filter must be an expression object")
    if depth > 10:
        raise invalid("Filter expressions nest at most 10 deep")
    keys = [k for k, v in expr.items() if v is not None]
    if len(keys) != 1:
        raise invalid("an expression must have exactly one of And, Or, Not, Dimensions, Tags "
                      f"(got {', '.join(keys) or 'none'})")
    k, v = keys[0], expr[keys[0]]
    if k in ("And", "Or"):
        if not isinstance(v, list) or len(v) < 2:
            raise invalid(f"{k} needs a list of at least two expressions")
        parts = [compile_filter(e, depth + 1) for e in v]
        return (lambda r: all(p(r) for p in parts)) if k == "And" else (lambda r: any(p(r) for p in parts))
    if k == "Not":
        inner = compile_filter(v, depth + 1)
        return lambda r: not inner(r)
    if k == "Dimensions":
        key, values, opts = _values(v, "Dimensions")
        if key not in DIMENSIONS:
            raise invalid(f"unsupported dimension {str(key)[:40]!r}; pocketcloud filters on "
                          f"{', '.join(sorted(DIMENSIONS))}")
        if "ABSENT" in opts:
            raise invalid("MatchOptions ABSENT applies to tags only")
        get = DIMENSIONS[key]
        return lambda r: _match(get(r), values, opts)
    if k == "Tags":
        key, values, opts = _values(v, "Tags")
        if "ABSENT" in opts:
            return lambda r: key not in r["tags"]
        return lambda r: key in r["tags"] and _match(r["tags"][key], values, opts)
    if k in ("CostCategories", "ProductAttributes"):
        raise invalid(f"pocketcloud has no {k}; filter on Dimensions or Tags")
    raise invalid(f"unknown expression key {str(k)[:40]!r}")


def _values(v, what: str) -> tuple[str, list[str], set[str]]:
    if not isinstance(v, dict) or not isinstance(v.get("Key"), str):
        raise invalid(f"{what} needs a Key")
    values = v.get("Values") or []
    opts = set(v.get("MatchOptions") or ["EQUALS"])
    if not isinstance(values, list) or not all(isinstance(x, str) for x in values):
        raise invalid(f"{what}.Values must be a list of strings")
    if opts - MATCH_OPTIONS:
        raise invalid(f"unknown MatchOptions {sorted(opts - MATCH_OPTIONS)}")
    if not values and "ABSENT" not in opts:
        raise invalid(f"{what} {v['Key']} needs Values")
    return v["Key"], values, opts


def _match(value: str, values: list[str], opts: set[str]) -> bool:
    fold = "CASE_INSENSITIVE" in opts
    val = value.lower() if fold else value
    for want in values:
        w = want.lower() if fold else want
        if ("STARTS_WITH" in opts and val.startswith(w)) or ("ENDS_WITH" in opts and val.endswith(w)) or (
                "CONTAINS" in opts and w in val) or (val == w):
            return True
    return False


def check_group_by(group_by) -> list[tuple[str, str]]:
    if group_by is None:
        return []
    if not isinstance(group_by, list) or len(group_by) > MAX_GROUPS:
        raise invalid(f"GroupBy takes at most {MAX_GROUPS} group definitions")
    out = []
    for g in group_by:
        if not isinstance(g, dict):
            raise invalid("each GroupBy entry needs Type and Key")
        t, k = g.get("Type"), g.get("Key")
        if t == "DIMENSION":
            if k not in DIMENSIONS:
                raise invalid(f"unsupported GroupBy dimension {str(k)[:40]!r}; pocketcloud groups by "
                              f"{', '.join(sorted(DIMENSIONS))} or a TAG")
        elif t == "TAG":
            if not isinstance(k, str) or not 0 < len(k) <= 128:
                raise invalid("a TAG group needs the tag key")
        elif t in ("COST_CATEGORY", "PRODUCT_ATTRIBUTE"):
            raise invalid(f"pocketcloud has no {t.lower().replace('_', ' ')}s; group by DIMENSION or TAG")
        else:
            raise invalid(f"GroupBy Type must be DIMENSION or TAG, not {str(t)[:40]!r}")
        out.append((t, k))
    if len(set(out)) != len(out):
        raise invalid("GroupBy definitions must be distinct")
    return out


class Reports:
    def __init__(self, store, clock: BillingClock, account_names: Callable[[], dict[str, str]]):
        self.store = store
        self.clock = clock
        self.account_names = account_names

    # -- rows -----------------------------------------------------------------------------------
    def rows(self, accounts: list[str] | None, start: float, end: float) -> list[dict]:
        sql, params = "SELECT * FROM usage WHERE hour >= ? AND hour < ?", [start, end]
        if accounts is not None:
            if not accounts:
                return []
            sql += f" AND account IN ({','.join('?' * len(accounts))})"
            params += accounts
        out = []
        for r in self.store.query(sql, tuple(params)):
            d = dict(r)
            d["attrs"] = json.loads(d["attrs"])
            d["tags"] = json.loads(d["tags"])
            out.append(d)
        return out

    # -- validation of a period ---------------------------------------------------------------------
    def check_period(self, start, end, granularity, forecast: bool = False) -> tuple[float, float]:
        if granularity not in GRANULARITIES:
            raise invalid(f"Granularity must be one of {', '.join(GRANULARITIES)}, not {str(granularity)[:20]!r}")
        a = clk.parse_date(start, "TimePeriod.Start")
        b = clk.parse_date(end, "TimePeriod.End")
        if b <= a:
            raise invalid("Start date (and hour) should be before end date (and hour)")
        now = self.clock.now()
        if forecast:
            if a < clk.day_start(now):
                raise invalid(f"the forecast must start today ({clk.day(now)} on the billing clock) or later")
            if b > clk.add_months(clk.month_start(now), 12) + 86400:
                raise invalid("a forecast reaches at most 12 months ahead")
            return a, b
        if b > clk.add_months(clk.month_start(now), 1):
            raise invalid(f"end date past the beginning of next month (today is {clk.day(now)} on the billing clock)")
        if granularity == "HOURLY" and a < now - HOURLY_DAYS * 86400:
            raise invalid(f"start date is too old for hourly, the max supported days for hourly granularity is "
                          f"{HOURLY_DAYS} days")
        from .meter import RETENTION_S

        if a < clk.month_start(now - RETENTION_S):
            raise InvalidParameter(
                f"pocketcloud keeps 14 months of usage on the billing clock; data before "
                f"{clk.day(clk.month_start(now - RETENTION_S))} is no longer available", code="DataUnavailableException")
        return a, b

    @staticmethod
    def periods(a: float, b: float, granularity: str) -> list[tuple[float, float]]:
        out = []
        if granularity == "HOURLY":
            t = clk.hour_start(a)
        elif granularity == "DAILY":
            t = clk.day_start(a)
        else:
            t = clk.month_start(a)
        while t < b:
            nxt = clk.period_end(t, granularity)
            out.append((max(t, a), min(nxt, b)))
            t = nxt
        return out

    # -- GetCostAndUsage ------------------------------------------------------------------------------
    def cost_and_usage(self, *, accounts: list[str] | None, start, end, granularity, metrics, group_by=None,
                       filter=None) -> dict:
        a, b = self.check_period(start, end, granularity)
        if not isinstance(metrics, list) or not metrics:
            raise invalid("Metrics must list at least one of " + ", ".join(METRICS))
        bad = [m for m in metrics if m not in METRICS]
        if bad:
            raise invalid(f"unsupported metric {str(bad[0])[:40]!r}; pocketcloud offers {', '.join(METRICS)}")
        groups = check_group_by(group_by)
        pred = compile_filter(filter) if filter is not None else (lambda r: True)
        rows = [r for r in self.rows(accounts, a, b) if pred(r)]
        now = self.clock.now()
        fmt = (lambda t: clk.iso(t)) if granularity == "HOURLY" else clk.day
        results = []
        for pa, pb in self.periods(a, b, granularity):
            in_p = [r for r in rows if pa <= r["hour"] < pb]
            entry = {"TimePeriod": {"Start": fmt(pa), "End": fmt(pb)}, "Total": {}, "Groups": [],
                     "Estimated": pb > now}
            if groups:
                buckets: dict[tuple, list] = {}
                for r in in_p:
                    buckets.setdefault(tuple(self._group_key(r, g) for g in groups), []).append(r)
                entry["Groups"] = [{"Keys": list(k), "Metrics": self._metrics(v, metrics)}
                                   for k, v in sorted(buckets.items(), key=lambda kv: -sum(x["cost"] for x in kv[1]))]
            else:
                entry["Total"] = self._metrics(in_p, metrics)
            results.append(entry)
        return {"GroupDefinitions": [{"Type": t, "Key": k} for t, k in groups], "ResultsByTime": results,
                "DimensionValueAttributes": self._account_attrs(rows) if ("DIMENSION", "LINKED_ACCOUNT") in groups
                else []}

    @staticmethod
    def _group_key(r: dict, g: tuple[str, str]) -> str:
        t, k = g
        if t == "TAG":
            return f"{k}${r['tags'].get(k, '')}"
        return DIMENSIONS[k](r)

    @staticmethod
    def _metrics(rows: list[dict], metrics: list[str]) -> dict:
        out = {}
        cost = sum(r["cost"] for r in rows)
        for m in metrics:
            if m == "UsageQuantity":
                units = {r["unit"] for r in rows}
                out[m] = {"Amount": amount(sum(r["quantity"] for r in rows)),
                          "Unit": units.pop() if len(units) == 1 else "N/A"}
            else:
                out[m] = {"Amount": amount(cost), "Unit": "USD"}
        return out

    def _account_attrs(self, rows: list[dict]) -> list[dict]:
        names = self.account_names()
        return [{"Value": a, "Attributes": {"description": names.get(a, a)}}
                for a in sorted({r["account"] for r in rows})]

    # -- GetCostForecast ------------------------------------------------------------------------------
    def rate(self, accounts: list[str] | None, pred=None) -> float | None:
        """Cost per billing-clock second over the trailing week (or since the first usage, when
        younger): the run rate a forecast extrapolates. None without any usage."""
        now = self.clock.now()
        first = self.store.one("SELECT MIN(hour) AS h FROM usage" + (
            f" WHERE account IN ({','.join('?' * len(accounts))})" if accounts else ""), tuple(accounts or ()))
        if accounts == [] or first is None or first["h"] is None:
            return None
        since = max(now - 7 * 86400, first["h"], self.clock.anchor.started_sim)
        rows = [r for r in self.rows(accounts, clk.hour_start(since), now + 3600) if pred is None or pred(r)]
        span = max(now - since, 3600.0)
        return sum(r["cost"] for r in rows) / span

    def cost_between(self, accounts, a: float, b: float, pred=None) -> float:
        return sum(r["cost"] for r in self.rows(accounts, clk.hour_start(a), b) if pred is None or pred(r))

    def forecast(self, *, accounts: list[str] | None, start, end, granularity, metric, filter=None,
                 level: int | None = None) -> dict:
        allowed = ("UNBLENDED_COST", "BLENDED_COST", "AMORTIZED_COST", "NET_UNBLENDED_COST", "NET_AMORTIZED_COST")
        if metric not in allowed:
            raise invalid(f"unsupported forecast metric {str(metric)[:40]!r}; pocketcloud forecasts "
                          f"{', '.join(allowed)}")
        if granularity == "HOURLY":
            raise invalid("forecasts are DAILY or MONTHLY")
        if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 51 <= level <= 99):
            raise invalid("PredictionIntervalLevel must be between 51 and 99")
        a, b = self.check_period(start, end, granularity, forecast=True)
        pred = compile_filter(filter) if filter is not None else None
        rate = self.rate(accounts, pred)
        if rate is None:
            raise InvalidParameter("insufficient amount of historical data to generate a forecast: nothing has "
                                   "been metered for this account yet", code="DataUnavailableException")
        now = self.clock.now()
        spread = 0.2 * (level or 80) / 80
        out, total = [], 0.0
        for pa, pb in self.periods(a, b, granularity):
            actual = self.cost_between(accounts, pa, min(pb, now), pred) if pa < now else 0.0
            projected = rate * max(0.0, pb - max(pa, now))
            mean = actual + projected
            total += mean
            out.append({"TimePeriod": {"Start": clk.day(pa), "End": clk.day(pb)}, "MeanValue": amount(mean),
                        "PredictionIntervalLowerBound": amount(actual + projected * (1 - spread)),
                        "PredictionIntervalUpperBound": amount(actual + projected * (1 + spread))})
        return {"Total": {"Amount": amount(total), "Unit": "USD"}, "ForecastResultsByTime": out}

    # -- beyond Cost Explorer: what the console and `pocketcloud bill` show ----------------------------
    def top_resources(self, accounts, a: float, b: float, limit: int = 10) -> list[dict]:
        agg: dict[tuple, dict] = {}
        for r in self.rows(accounts, a, b):
            k = (r["account"], r["resource"], r["usage_type"])
            e = agg.setdefault(k, {"resource": r["resource"], "account": r["account"], "service": r["service"],
                                   "usage_type": r["usage_type"], "quantity": 0.0, "unit": r["unit"], "cost": 0.0})
            e["quantity"] += r["quantity"]
            e["cost"] += r["cost"]
        return sorted(agg.values(), key=lambda e: -e["cost"])[:limit]

    def paid_vs_used(self, accounts, a: float, b: float) -> list[dict]:
        """Per instance: hours paid for next to what the engine measured it using."""
        paid: dict[str, dict] = {}
        for r in self.rows(accounts, a, b):
            if r["usage_type"].startswith(ledger.BOX_USAGE):
                e = paid.setdefault(r["resource"], {"instance_id": r["resource"], "account": r["account"],
                                                    "type": r["attrs"].get("instance_type"),
                                                    "kind": r["attrs"].get("platform"), "hours": 0.0, "cost": 0.0})
                e["hours"] += r["quantity"]
                e["cost"] += r["cost"]
        if not paid:
            return []
        ids = list(paid)
        used = {r["resource"]: r for r in self.store.query(
            "SELECT resource, SUM(seconds) AS s, SUM(cpu_seconds) AS cpu, SUM(mem_byte_seconds) AS mbs, "
            "MAX(mem_peak) AS peak, SUM(tx_bytes) AS tx, MAX(vcpus) AS vcpus, MAX(memory_mib) AS mib "
            f"FROM engine_usage WHERE hour >= ? AND hour < ? AND resource IN ({','.join('?' * len(ids))}) "
            "GROUP BY resource", (a, b, *ids))}
        out = []
        for iid, e in paid.items():
            u = used.get(iid)
            if u and u["s"] and u["vcpus"]:
                util = u["cpu"] / (u["s"] * u["vcpus"])
                e.update(cpu_utilisation=round(util, 4), vcpus=u["vcpus"],
                         vcpu_hours_paid=round(e["hours"] * u["vcpus"], 6),
                         vcpu_hours_used=round(e["hours"] * u["vcpus"] * util, 6),
                         memory_mib=u["mib"], memory_avg_mib=round(u["mbs"] / u["s"] / 2**20, 1),
                         memory_peak_mib=round(u["peak"] / 2**20, 1), tx_bytes=u["tx"],
                         measured_seconds=round(u["s"], 1))
            else:
                e.update(cpu_utilisation=None, note="no engine samples in this period")
            e["hours"] = round(e["hours"], 6)
            out.append(e)
        return sorted(out, key=lambda e: -e["cost"])


def month_to_date(clock: BillingClock) -> tuple[float, float]:
    now = clock.now()
    return clk.month_start(now), clk.add_months(clk.month_start(now), 1)
