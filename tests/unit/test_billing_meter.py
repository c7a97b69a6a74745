"""The meter on a fake engine with a hand-driven clock: exact running time, the 60-second
minimum, a crash inside the metering transaction, S3 storage and requests, volumes from a
block source, engine usage, and a time-scale change."""
from __future__ import annotations

import pytest

from emulator.billing import BlockItem, ledger
from emulator.billing.meter import request_tier
from emulator.billing.probes import Sample

from .billing_fakes import add_bucket, costs, make_cloud, quantities

M5 = 0.096


@pytest.fixture
def cloud(tmp_path, wall):
    return make_cloud(tmp_path, scale="60")


@pytest.fixture
def alice(cloud):
    return cloud.accounts.create("alice")[0]


def test_running_time_is_billed_to_the_transition_not_to_the_pass(cloud, alice, wall):
    inst = cloud.run_instance(alice, image="tiny", type="m5.large")
    wall.advance(45)                      # 45 real s x 60 = 45 billed minutes
    cloud.billing.meter_now()
    wall.advance(15)
    cloud.stop_instance(alice, inst.id)   # one billed hour in all
    wall.advance(500)                     # stopped: nothing more
    cloud.billing.meter_now()
    q = quantities(cloud, alice.id)
    assert q == {"BoxUsage:m5.large": pytest.approx(1.0)}
    assert costs(cloud, alice.id)["BoxUsage:m5.large"] == pytest.approx(M5)
    # Split at the billing clock's hours: the clock started at T0, so 45 + 15 minutes span two hours.
    hours = cloud.store.query("SELECT hour, quantity FROM usage ORDER BY hour")
    assert sum(h["quantity"] for h in hours) == pytest.approx(1.0) and len(hours) in (1, 2)


def test_a_short_run_bills_the_aws_minimum_of_60_seconds(cloud, alice, wall):
    inst = cloud.run_instance(alice, image="tiny", type="m5.large")
    wall.advance(0.25)                    # 15 billed seconds
    cloud.terminate_instance(alice, inst.id)
    cloud.billing.meter_now()
    assert quantities(cloud, alice.id)["BoxUsage:m5.large"] == pytest.approx(60 / 3600)
    assert not cloud.store.query("SELECT * FROM meter_marks WHERE kind='instance'"), "terminated: mark dropped"


def test_stop_and_start_bill_each_run(cloud, alice, wall):
    inst = cloud.run_instance(alice, image="tiny", type="t2.micro")
    wall.advance(30)
    cloud.stop_instance(alice, inst.id)
    wall.advance(600)
    cloud.start_instance(alice, inst.id)
    wall.advance(30)
    cloud.billing.meter_now()
    assert quantities(cloud, alice.id)["BoxUsage:t2.micro"] == pytest.approx(1.0)


def test_a_crash_inside_the_metering_transaction_never_double_counts(cloud, alice, wall):
    cloud.billing.meter_now()             # the meter's first pass starts its marks
    inst = cloud.run_instance(alice, image="tiny", type="m5.large")
    add_bucket(cloud, "b1", alice.id)
    wall.advance(20)
    cloud.storage.index.record_object("b1", "k", 1 << 30)
    for _ in range(7):
        cloud.billing.meter.s3_request("PUT", "b1", "k", set())
    wall.advance(40)
    with pytest.raises(RuntimeError):
        cloud.billing.meter.run_pass(probe_engines=False, crash_after_usage=True)
    assert not cloud.store.query("SELECT * FROM usage"), "the failed pass left nothing behind"
    cloud.billing.meter_now()
    cloud.billing.meter_now()             # a second pass at the same instant adds nothing
    q = quantities(cloud, alice.id)
    assert q["BoxUsage:m5.large"] == pytest.approx(1.0)
    assert q[ledger.S3_TIER1] == 7, "request counts of the failed pass were kept for the next one"
    # 1 GiB for 40 real s = 40 billed minutes in January (31 days)
    assert q[ledger.S3_STORAGE] == pytest.approx((40 / 60) / (31 * 24))
    cloud.stop_instance(alice, inst.id)


def test_downtime_of_the_server_is_billed_once_on_the_next_pass(tmp_path, wall):
    cloud = make_cloud(tmp_path, scale="60")
    alice = cloud.accounts.create("alice")[0]
    cloud.run_instance(alice, image="tiny", type="m5.large")
    wall.advance(10)
    cloud.billing.meter_now()
    wall.advance(50)                      # the server is down; the engine keeps the instance running
    again = make_cloud(tmp_path, scale="60")  # a new process on the same home
    again.billing.meter_now()
    again.billing.meter_now()
    assert quantities(again, alice.id)["BoxUsage:m5.large"] == pytest.approx(1.0)


def test_a_state_written_without_a_recorded_change_is_caught_by_the_next_pass(cloud, alice, wall):
    inst = cloud.run_instance(alice, image="tiny", type="m5.large")
    wall.advance(30)
    cloud.billing.meter_now()
    with cloud.store.tx() as c:           # a writer that bypasses Cloud._save
        c.execute("UPDATE instances SET state='stopped' WHERE id=?", (inst.id,))
    wall.advance(30)
    cloud.billing.meter_now()             # billed up to this pass, then no more
    wall.advance(300)
    cloud.billing.meter_now()
    assert quantities(cloud, alice.id)["BoxUsage:m5.large"] == pytest.approx(1.0)


def test_s3_request_classes():
    assert request_tier("PUT", "b", "k", set()) == ledger.S3_TIER1
    assert request_tier("POST", "b", "k", {"uploads"}) == ledger.S3_TIER1
    assert request_tier("GET", "b", None, set()) == ledger.S3_TIER1          # ListObjects
    assert request_tier("GET", "b", "k", {"uploadId"}) == ledger.S3_TIER1     # ListParts
    assert request_tier("GET", "b", "k", set()) == ledger.S3_TIER2
    assert request_tier("HEAD", "b", "k", set()) == ledger.S3_TIER2
    assert request_tier("GET", "b", None, {"location"}) == ledger.S3_TIER2
    assert request_tier("DELETE", "b", "k", set()) is None                   # free


def test_requests_are_billed_to_the_bucket_owner_and_unknown_buckets_to_nobody(cloud, alice, wall):
    bob = cloud.accounts.create("bob")[0]
    add_bucket(cloud, "alices", alice.id)
    for _ in range(2000):
        cloud.billing.meter.s3_request("GET", "alices", "k", set())
    cloud.billing.meter.s3_request("PUT", "nobodys", "k", set())
    cloud.billing.meter_now()
    assert costs(cloud, alice.id)[ledger.S3_TIER2] == pytest.approx(2 * 0.0004)
    assert costs(cloud, bob.id) == {}
    assert cloud.store.one("SELECT COUNT(*) AS n FROM usage")["n"] == 1


def test_multipart_parts_hold_storage_until_completed_or_aborted(cloud, alice, wall):
    add_bucket(cloud, "mp", alice.id)
    cloud.storage.index.record_upload("u1", "mp", "big", alice.id)
    cloud.storage.index.record_part("u1", 1, 1 << 30, "etag")
    cloud.billing.meter_now()
    wall.advance(60)                      # one billed hour
    cloud.billing.meter_now()
    assert quantities(cloud, alice.id)[ledger.S3_STORAGE] == pytest.approx(1 / (31 * 24))


def test_volumes_and_snapshots_from_a_block_source(cloud, alice, wall):
    items = [BlockItem("vol-1", alice.id, "volume", 100), BlockItem("snap-1", alice.id, "snapshot", 10)]
    cloud.billing.add_block_source(lambda: list(items))
    cloud.billing.meter_now()
    wall.advance(31 * 24 * 60)            # a whole billed January
    cloud.billing.meter_now()
    c = costs(cloud, alice.id)
    assert c[ledger.VOLUME_USAGE] == pytest.approx(100 * 0.08)
    assert c[ledger.SNAPSHOT_USAGE] == pytest.approx(10 * 0.05)
    items.pop()                           # the snapshot is deleted: its mark goes, billing stops
    cloud.billing.meter_now()
    assert not cloud.store.one("SELECT 1 FROM meter_marks WHERE resource='snap-1'")


def test_a_broken_block_source_does_not_stop_the_meter(cloud, alice, wall):
    def broken():
        raise OSError("volumes table missing")

    cloud.billing.add_block_source(broken)
    cloud.run_instance(alice, image="tiny", type="m5.large")
    wall.advance(60)
    cloud.billing.meter_now()
    assert quantities(cloud, alice.id)["BoxUsage:m5.large"] == pytest.approx(1.0)


def test_engine_usage_deltas_and_data_transfer(cloud, alice, wall, monkeypatch):
    inst = cloud.run_instance(alice, image="tiny", type="m5.large")
    readings = iter([Sample(wall.now, 0, 100 << 20, 0), Sample(wall.now + 10, 5 * 10**9, 200 << 20, 1 << 30),
                     Sample(wall.now + 20, 10**9, 200 << 20, 1 << 20)])  # the last one: restarted counters
    monkeypatch.setattr(cloud.billing.meter.probe, "sample", lambda kind, eid: next(readings))
    for _ in range(3):
        cloud.billing.meter.run_pass(probe_engines=True)
        wall.advance(10)
    row = cloud.store.one("SELECT SUM(seconds) AS s, SUM(cpu_seconds) AS cpu, SUM(tx_bytes) AS tx, "
                          "MAX(mem_peak) AS peak FROM engine_usage WHERE resource=?", (inst.id,))
    assert row["s"] == pytest.approx(20) and row["cpu"] == pytest.approx(6)
    assert row["tx"] == (1 << 30) + (1 << 20) and row["peak"] == 200 << 20
    assert costs(cloud, alice.id)[ledger.TRANSFER_OUT] == pytest.approx((1 + 1 / 1024) * 0.09)
    used = cloud.billing.reports.paid_vs_used([alice.id], 0, 4e9)[0]
    assert used["cpu_utilisation"] == pytest.approx(6 / (20 * 2))


def test_changing_the_time_scale_keeps_the_clock_continuous_and_the_past_priced(cloud, alice, wall):
    cloud.run_instance(alice, image="tiny", type="m5.large")
    wall.advance(60)                      # 1 h at scale 60
    before = cloud.billing.clock.now()
    cloud.billing.set_time_scale(None, 3600)
    assert cloud.billing.clock.now() == pytest.approx(before)
    wall.advance(2)                       # 2 h at scale 3600
    cloud.billing.meter_now()
    assert quantities(cloud, alice.id)["BoxUsage:m5.large"] == pytest.approx(3.0)
    assert cloud.billing.clock.now() == pytest.approx(before + 7200)


def test_a_price_override_file_is_merged_over_the_defaults(tmp_path, wall):
    cloud = make_cloud(tmp_path, scale="1")
    (tmp_path / "home" / "prices.toml").write_text('[ec2.instance_hour]\n"m5.large" = 1.5\n')
    prices = cloud.billing.prices.current()
    assert prices.instance("m5.large") == 1.5 and prices.instance("t2.micro") == 0.0116
    assert prices.override.endswith("prices.toml")
    (tmp_path / "home" / "prices.toml").write_text('[ec2.instance_hour]\n"m5.large" = -1\n')
    import os
    os.utime(tmp_path / "home" / "prices.toml", (wall.now + 5, wall.now + 5))
    assert cloud.billing.prices.current().instance("m5.large") == M5, "a bad override is refused, defaults kept"


def test_a_pass_without_probes_keeps_the_engine_baseline(cloud, alice, wall, monkeypatch):
    inst = cloud.run_instance(alice, image="tiny", type="m5.large")
    readings = iter([Sample(wall.now, 0, 0, 0), Sample(wall.now + 2, 10**9, 0, 0)])
    monkeypatch.setattr(cloud.billing.meter.probe, "sample", lambda kind, eid: next(readings))
    cloud.billing.meter.run_pass(probe_engines=True)
    wall.advance(1)
    cloud.billing.meter_now()             # a bill read in between: no probe
    wall.advance(1)
    cloud.billing.meter.run_pass(probe_engines=True)
    row = cloud.store.one("SELECT SUM(seconds) AS s, SUM(cpu_seconds) AS cpu FROM engine_usage WHERE resource=?",
                          (inst.id,))
    assert (row["s"], row["cpu"]) == (pytest.approx(2), pytest.approx(1))


def test_bytes_sent_before_the_first_sample_are_billed_once_and_an_unreadable_sample_keeps_the_mark(
        cloud, alice, wall, monkeypatch):
    inst = cloud.run_instance(alice, image="tiny", type="t2.micro")
    readings = iter([Sample(wall.now, 10**9, 0, 1 << 30),   # a GiB went out before the meter first looked
                     None,                                  # the engine did not answer this pass
                     Sample(wall.now + 20, 2 * 10**9, 0, (1 << 30) + (1 << 20))])
    monkeypatch.setattr(cloud.billing.meter.probe, "sample", lambda kind, eid: next(readings))
    for _ in range(3):
        cloud.billing.meter.run_pass(probe_engines=True)
        wall.advance(10)
    row = cloud.store.one("SELECT SUM(seconds) AS s, SUM(cpu_seconds) AS cpu, SUM(tx_bytes) AS tx "
                          "FROM engine_usage WHERE resource=?", (inst.id,))
    assert row["tx"] == (1 << 30) + (1 << 20), "the first GiB once, then the delta across the gap, never twice"
    assert row["s"] == pytest.approx(20) and row["cpu"] == pytest.approx(1)
    assert costs(cloud, alice.id)[ledger.TRANSFER_OUT] == pytest.approx((1 + 1 / 1024) * 0.09)
    cloud.stop_instance(alice, inst.id)
    cloud.billing.meter.run_pass(probe_engines=True)
    assert not cloud.store.one("SELECT 1 FROM meter_marks WHERE kind='engine' AND resource=?", (inst.id,)), \
        "stopped: its counters restart, so its mark goes"
