"""The billing clock and the cost lab's model."""
from __future__ import annotations

import pytest

from emulator.billing import clock as clk
from emulator.billing.clock import BillingClock, check_scale, scale_meaning
from emulator.billing.costlab import MeasuredGroup, OwnedServer, TargetTracking, Workload, crossover, month, sweep
from emulator.config import Config
from emulator.errors import InvalidParameter
from emulator.state import Store



def test_the_clock_runs_scaled_and_a_rescale_never_jumps(tmp_path, wall):
    store = Store(tmp_path / "s.db")
    clock = BillingClock(store, "60")
    start = clock.now()
    wall.advance(60)
    assert clock.now() == pytest.approx(start + 3600)
    with store.tx() as c:
        anchor = clock.rescale(c, 1.0, wall.now)
    clock.adopt(anchor)
    assert clock.now() == pytest.approx(start + 3600)
    wall.advance(10)
    assert clock.now() == pytest.approx(start + 3610)
    assert BillingClock(store, None).now() == pytest.approx(start + 3610), "the anchor is in the store"


def test_a_new_clock_starts_where_it_is_told_and_a_stored_one_keeps_its_time(tmp_path, wall):
    store = Store(tmp_path / "s.db")
    clock = BillingClock(store, "360", start="2026-01-02")
    jan2 = clk.parse_date("2026-01-02", "start")
    assert clock.now() == pytest.approx(jan2) and clock.anchor.started_sim == pytest.approx(jan2)
    wall.advance(10)
    assert clk.iso(clock.now()) == "2026-01-02T01:00:00Z", "10 real seconds bill as an hour from the start"
    again = BillingClock(store, None, start="2026-06-01T09:00:00Z")
    assert again.now() == pytest.approx(jan2 + 3600), "a clock in the store never jumps"
    with pytest.raises(InvalidParameter):
        BillingClock(Store(tmp_path / "t.db"), None, start="2026-13-01")
    for bad in ("January", "2026-13-01", "2026-01-01T25:00:00Z"):
        with pytest.raises(ValueError):
            Config(home=tmp_path, billing_start=bad)
    assert Config(home=tmp_path, billing_start="2026-01-01T09:00:00Z").billing_start == "2026-01-01T09:00:00Z"


@pytest.mark.parametrize("bad", ["0", "-1", "fast", None, float("nan"), "1e9"])
def test_bad_time_scales_are_refused(bad):
    with pytest.raises(InvalidParameter):
        check_scale(bad)


def test_scale_meanings():
    assert scale_meaning(1).startswith("real time")
    assert scale_meaning(60) == "one real minute bills as one hour"
    assert scale_meaning(3600) == "one real second bills as one hour"
    assert scale_meaning(360) == "one billed hour passes in 10 real seconds"


def test_calendar_helpers():
    feb = clk.parse_date("2026-02-10", "x")
    assert clk.month_seconds(feb) == 28 * 86400
    assert clk.day(clk.add_months(clk.month_start(feb), 11)) == "2027-01-01"
    assert clk.day(clk.period_start(feb, "QUARTERLY")) == "2026-01-01"
    assert clk.iso(clk.parse_date("2026-02-10T13:00:00Z", "x")) == "2026-02-10T13:00:00Z"
    with pytest.raises(InvalidParameter):
        clk.parse_date("10/02/2026", "x")


def test_the_workload_and_the_three_setups():
    w = Workload(peak_vcpus=8, peak_hours=3, base=0.1)
    d = w.demand()
    assert len(d) == 24 and max(d) == 8 and min(d) == pytest.approx(0.8)
    assert sum(d) == pytest.approx(8 * (3 + 0.1 * 21))
    kw = {"price_per_hour": 0.096, "vcpus": 2, "owned": OwnedServer(3000, 36, 150, 0.3),
          "autoscaled": TargetTracking("m5.large", max_size=4)}
    m = month(w, **kw)["setups"]
    assert m["always-on"]["cost"] == pytest.approx(4 * 0.096 * 720)
    assert m["owned"]["cost"] == pytest.approx(3000 / 36 + 150 * 720 / 1000 * 0.3, abs=1e-3)
    assert m["autoscaled"]["cost"] < m["always-on"]["cost"] and m["autoscaled"]["unserved_vcpu_hours"] == 0
    points = sweep(w, **kw)
    assert points[-1]["autoscaled"] == pytest.approx(points[-1]["always-on"]), "all-day peak: no saving"
    assert crossover(points, "always-on", "owned") == 0.0
    beyond = crossover(points, "autoscaled", "owned")
    assert 0 < beyond < 1
    assert crossover(points, "owned", "always-on") is None


def test_target_tracking_lag_delays_the_capacity():
    tt = TargetTracking("m5.large", target=1.0, lag_hours=1)
    assert tt.capacity([2.0] * 12 + [8.0] + [2.0] * 11, 2)[12:14] == [1, 4]


def test_a_measured_group_prices_what_it_really_ran():
    w = Workload(peak_vcpus=8, peak_hours=3, base=0.1)
    plan = TargetTracking("m5.large", max_size=4)
    ran = [1.0] * 17 + [1.5, 3.5, 4.0, 4.0, 2.0, 1.0, 1.0]  # launch and termination lag around the peak
    group = MeasuredGroup("m5.large", plan, tuple(w.demand()), tuple(ran), group="g")
    kw = {"price_per_hour": 0.096, "vcpus": 2, "owned": OwnedServer()}
    m = month(w, autoscaled=group, **kw)["setups"]["autoscaled"]
    assert m["instances"] == ran and m["cost"] == pytest.approx(sum(ran) * 30 * 0.096)
    assert m["unserved_vcpu_hours"] == pytest.approx(30 * ((4.4 - 3) + (8 - 7))), "the lag leaves load unserved"
    wider = Workload(peak_vcpus=8, peak_hours=6, base=0.1).demand()
    assert group.capacity(wider, 2) == plan.capacity(wider, 2), "a day never run falls back to the plan's rule"
    assert "real Auto Scaling group (g)" in group.how and "70%" in group.how


def test_hourly_integrates_the_samples_as_steps():
    from api.cli.lab_cost import hourly

    t0 = 1000.0
    samples = [(t0 - 1, 1), (t0 + 0.5, 3), (t0 + 1.5, 1), (t0 + 30, 0)]
    out = hourly(samples, t0, 1.0)
    assert out[0] == pytest.approx(2.0) and out[1] == pytest.approx(2.0) and out[2:] == [1.0] * 22
