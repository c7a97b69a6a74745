"""Pay-per-use: the meter, the price list, the billing clock, bills, budgets and hygiene.

    billing = Billing(cloud)          # Cloud builds one; the server starts its thread
    billing.start()                   # a metering pass every `meter_interval` seconds
    s3_request(cloud, ...)            # the S3 gateway counts each request (one call)
    billing.add_block_source(fn)      # the volumes feature reports volumes and snapshots
    record_state(c, id, state, at)    # Cloud._save, in the transaction that changes a state

Everything is on one billing clock (see clock.py): Cost Explorer periods, budget periods and
forecasts. The time scale applies to billing only.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..errors import Forbidden, InvalidParameter
from .budgets import Budgets
from .clock import BillingClock, check_scale
from .hygiene import Hygiene
from .meter import BlockItem, BlockSource, Meter
from .prices import PriceBook
from .reports import Reports

__all__ = ["Billing", "BlockItem", "BlockSource", "record_state", "s3_request"]
log = logging.getLogger("pocketcloud.billing")


def s3_request(cloud, method: str, bucket: str | None, key: str | None, sub) -> None:
    """The S3 gateway's hook: one request, counted against the bucket owner (a cloud built
    without billing, as some benches do, counts nothing)."""
    billing = getattr(cloud, "billing", None)
    if billing is not None:
        billing.meter.s3_request(method, bucket, key, sub)


def record_state(c, instance_id: str, state: str, at: float) -> None:
    """Note an instance state change inside the transaction that makes it (Cloud._save), so
    running time is billed to the transition, and never without the change itself."""
    c.execute("INSERT INTO instance_states (instance, at, state) VALUES (?,?,?)", (instance_id, at, state))


def _interval(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = -1.0
    if not 0.2 <= v <= 3600:
        raise InvalidParameter(f"POCKETCLOUD_METER_INTERVAL must be 0.2-3600 seconds, not {str(value)[:20]!r}")
    return v


class Billing:
    def __init__(self, cloud):
        self.cloud = cloud
        config = cloud.config
        self.interval = _interval(getattr(config, "meter_interval", "5"))
        self.clock = BillingClock(cloud.store, getattr(config, "time_scale", None),
                                  getattr(config, "billing_start", None))
        prices = getattr(config, "prices_path", None) or config.home / "prices.toml"
        self.prices = PriceBook(Path(prices))
        self.meter = Meter(cloud, self.clock, self.prices)
        self.reports = Reports(cloud.store, self.clock,
                               lambda: {a.id: a.name for a in cloud.accounts.list()})
        self.budgets = Budgets(cloud, self.clock, self.reports)
        self.hygiene = Hygiene(cloud, self)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the volumes feature's hook ---------------------------------------------------------------
    def add_block_source(self, source: BlockSource) -> None:
        self.meter.block_sources.append(source)

    # -- metering ---------------------------------------------------------------------------------
    def meter_now(self, probe_engines: bool = False) -> dict:
        """A pass on demand, so a bill read right after a stop already shows it."""
        return self.meter.run_pass(probe_engines=probe_engines)

    def start(self, interval: float | None = None) -> threading.Thread:
        """The metering loop, beside the reconciler: a pass, then the budgets, every interval."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        wanted = getattr(self.cloud.config, "time_scale", None)
        if wanted is not None and check_scale(wanted) != self.clock.scale:
            self.set_time_scale(None, wanted)
        every = interval or self.interval
        self._stop.clear()

        def loop():
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self.meter.run_pass(probe_engines=True)
                    self.budgets.evaluate()
                except Exception:  # the loop must outlive a bad pass (marks make the next one catch up)
                    log.exception("metering pass failed")
                self._stop.wait(max(0.1, every - (time.monotonic() - started)))

        self._thread = threading.Thread(target=loop, name="meter", daemon=True)
        self._thread.start()
        log.info("billing: metering every %gs; clock %s", every, self.clock.describe()["meaning"])
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    # -- settings -----------------------------------------------------------------------------------
    def set_time_scale(self, caller, scale) -> dict:
        """Meter everything up to now at the old scale, then re-anchor the clock, atomically."""
        if caller is not None and not caller.is_admin:
            raise Forbidden("only an admin can change the billing time scale")
        self.meter.run_pass(probe_engines=False, rescale=check_scale(scale))
        return self.clock.describe()

    def settings(self) -> dict:
        return {"clock": self.clock.describe(), "meter_interval_seconds": self.interval,
                "prices": self.prices.current().to_dict()["source"]}
