"""The billing clock: the one simulated clock every bill, budget period and forecast uses.

A class cannot wait a month to see a monthly bill, so billing may run faster than the wall
clock: with a time scale of 60, one real minute bills as one hour. The scale applies to
billing only (instances, engines and S3 run in real time). The clock is

    sim(t) = origin_sim + (t - origin_real) * time_scale

anchored in the store. Changing the scale re-anchors it at the moment of the change
(sim(now) stays where it is), so the billing clock never jumps or runs backwards, and usage
metered before the change keeps the scale it was metered under. Cost Explorer periods
(DAILY/MONTHLY/HOURLY), budget periods and forecasts are all on this clock: "today" and
"this month" mean the billing clock's today and month, which run ahead of the wall clock
when the scale is above 1.
"""
from __future__ import annotations

import calendar
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import InvalidParameter
from ..state import Store

MAX_SCALE = 31_536_000.0  # one real second bills as one year


@dataclass(frozen=True)
class Anchor:
    time_scale: float
    origin_real: float
    origin_sim: float
    started_sim: float  # when this cloud's billing began, on the billing clock

    def sim(self, real: float) -> float:
        return self.origin_sim + (real - self.origin_real) * self.time_scale


def check_scale(value) -> float:
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"the time scale must be a number, not {str(value)[:40]!r}") from None
    if not 1.0 <= scale <= MAX_SCALE or scale != scale:
        raise InvalidParameter(f"the time scale must be between 1 (real time) and {MAX_SCALE:.0f} "
                               "(one real second bills as a year)")
    return scale


class BillingClock:
    def __init__(self, store: Store, initial_scale: float | None = None, start: str | None = None):
        """`start` (a date or UTC time) is where a new cloud's clock begins; a stored clock never jumps."""
        self.store = store
        self._lock = threading.Lock()
        self._anchor: Anchor | None = None
        row = store.one("SELECT * FROM billing_settings WHERE id=1")
        if row is None:
            now = time.time()
            scale = check_scale(initial_scale) if initial_scale is not None else 1.0
            sim = parse_date(start, "the billing start (POCKETCLOUD_BILLING_START)") if start else now
            with store.tx() as c:
                c.execute("INSERT OR IGNORE INTO billing_settings (id, time_scale, origin_real, origin_sim, "
                          "started_sim, updated_at) VALUES (1,?,?,?,?,?)", (scale, now, sim, sim, now))

    @property
    def anchor(self) -> Anchor:
        with self._lock:
            if self._anchor is None:
                row = self.store.one("SELECT * FROM billing_settings WHERE id=1")
                self._anchor = Anchor(row["time_scale"], row["origin_real"], row["origin_sim"], row["started_sim"])
            return self._anchor

    @property
    def scale(self) -> float:
        return self.anchor.time_scale

    def sim(self, real: float) -> float:
        return self.anchor.sim(real)

    def now(self) -> float:
        return self.anchor.sim(time.time())

    def rescale(self, c, scale: float, at_real: float) -> Anchor:
        """Re-anchor inside the caller's transaction (the meter's, so that everything up to
        `at_real` has been metered under the old scale); `adopt` the result once committed."""
        old = self.anchor
        new = Anchor(scale, at_real, old.sim(at_real), old.started_sim)
        c.execute("UPDATE billing_settings SET time_scale=?, origin_real=?, origin_sim=?, updated_at=? WHERE id=1",
                  (new.time_scale, new.origin_real, new.origin_sim, time.time()))
        return new

    def adopt(self, anchor: Anchor) -> None:
        with self._lock:
            self._anchor = anchor

    def describe(self) -> dict:
        a = self.anchor
        now = time.time()
        return {
            "time_scale": a.time_scale,
            "meaning": scale_meaning(a.time_scale),
            "now": iso(a.sim(now)),
            "wall_clock": iso(now),
            "started": iso(a.started_sim),
            "note": "Cost Explorer periods, budget periods and forecasts use this billing clock",
        }


def scale_meaning(scale: float) -> str:
    if scale == 1:
        return "real time: one second bills as one second"
    best = None
    for unit, secs in (("minute", 60), ("hour", 3600), ("day", 86400), ("month of 30 days", 2_592_000),
                       ("year", 31_536_000)):
        real = secs / scale
        for name, length in (("second", 1), ("minute", 60), ("hour", 3600)):
            if real == length:
                best = f"one real {name} bills as one {unit}"
    return best or f"one billed hour passes in {3600 / scale:g} real seconds"


# -- calendar on the billing clock (UTC) -----------------------------------------------------
def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


def hour_start(ts: float) -> float:
    return float(int(ts // 3600) * 3600)


def day_start(ts: float) -> float:
    return float(int(ts // 86400) * 86400)


def month_start(ts: float) -> float:
    d = datetime.fromtimestamp(ts, timezone.utc)
    return datetime(d.year, d.month, 1, tzinfo=timezone.utc).timestamp()


def add_months(ts: float, n: int) -> float:
    d = datetime.fromtimestamp(ts, timezone.utc)
    m = d.year * 12 + (d.month - 1) + n
    return datetime(m // 12, m % 12 + 1, 1, tzinfo=timezone.utc).timestamp()


def month_seconds(ts: float) -> float:
    """Length of the calendar month containing ts: AWS prorates GB-month prices by the
    month's real length (a 31-day month has 744 hours)."""
    d = datetime.fromtimestamp(ts, timezone.utc)
    return calendar.monthrange(d.year, d.month)[1] * 86400.0


def period_start(ts: float, unit: str) -> float:
    """Start of the DAILY/MONTHLY/QUARTERLY/ANNUALLY period containing ts."""
    if unit == "DAILY":
        return day_start(ts)
    d = datetime.fromtimestamp(ts, timezone.utc)
    if unit == "MONTHLY":
        return datetime(d.year, d.month, 1, tzinfo=timezone.utc).timestamp()
    if unit == "QUARTERLY":
        return datetime(d.year, 3 * ((d.month - 1) // 3) + 1, 1, tzinfo=timezone.utc).timestamp()
    if unit == "ANNUALLY":
        return datetime(d.year, 1, 1, tzinfo=timezone.utc).timestamp()
    raise ValueError(unit)


def period_end(start: float, unit: str) -> float:
    if unit == "HOURLY":
        return start + 3600
    if unit == "DAILY":
        return start + 86400
    return add_months(start, {"MONTHLY": 1, "QUARTERLY": 3, "ANNUALLY": 12}[unit])


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def parse_date(value, what: str, code: str = "ValidationException") -> float:
    """YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ (UTC), as Cost Explorer takes them."""
    if isinstance(value, str):
        try:
            if _DATE.match(value):
                return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
            if _DATETIME.match(value):
                return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            pass
    raise InvalidParameter(f"{what} must be a date (YYYY-MM-DD) or a UTC time (YYYY-MM-DDThh:mm:ssZ), "
                           f"not {str(value)[:40]!r}", code=code)
