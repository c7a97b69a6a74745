"""Hygiene over the volumes feature's hook: what a block source
reports is checked for unattached volumes, old snapshots and stopped instances holding
volumes, per account, with the monthly cost and the command that cleans it up."""
from __future__ import annotations

import time

import pytest

from emulator.billing import BlockItem

from .billing_fakes import make_cloud


@pytest.fixture
def cloud(tmp_path, wall):
    return make_cloud(tmp_path, scale="60")


def test_the_cloud_reports_its_volumes_so_hygiene_checks_them(cloud):
    alice = cloud.accounts.create("alice")[0]
    assert cloud.billing.meter.block_sources, "the volumes feature registers its source with the cloud"
    report = cloud.billing.hygiene.report([alice.id])
    assert report["items"] == [] and not any("volumes and snapshots" in n for n in report["notes"])


def test_block_items_yield_unattached_volumes_old_snapshots_and_stopped_instances_holding_volumes(cloud, wall):
    alice, bob = cloud.accounts.create("alice")[0], cloud.accounts.create("bob")[0]
    running = cloud.run_instance(alice, image="tiny", type="t2.micro")
    stopped = cloud.run_instance(alice, image="tiny", type="t2.micro")
    cloud.stop_instance(alice, stopped.id)
    born = time.time()
    items = [BlockItem("vol-spare", alice.id, "volume", 20, tags={"Name": "spare"}),
             BlockItem("vol-root", alice.id, "volume", 8, attached_to=running.id),
             BlockItem("vol-held", alice.id, "volume", 30, attached_to=stopped.id),
             BlockItem("snap-old", alice.id, "snapshot", 10, created_at=born),
             BlockItem("vol-bobs", bob.id, "volume", 50)]
    cloud.billing.add_block_source(lambda: list(items))
    wall.advance(12 * 3600 + 60)  # 30 billed days and a bit at scale 60
    items.append(BlockItem("snap-new", alice.id, "snapshot", 10, created_at=time.time()))
    report = cloud.billing.hygiene.report([alice.id], idle_minutes=1, cpu_percent=0)
    found = {i["kind"]: i for i in report["items"]}
    assert {(i["kind"], i["resource"]) for i in report["items"]} == {
        ("unattached-volume", "vol-spare"), ("old-snapshot", "snap-old"), ("stopped-instance", stopped.id)}
    assert found["unattached-volume"]["monthly_cost"] == pytest.approx(20 * 0.08)
    assert found["unattached-volume"]["cleanup"] == "aws ec2 delete-volume --volume-id vol-spare"
    assert found["unattached-volume"]["name"] == "spare"
    assert found["old-snapshot"]["monthly_cost"] == pytest.approx(10 * 0.05)
    assert found["old-snapshot"]["cleanup"] == "aws ec2 delete-snapshot --snapshot-id snap-old"
    assert found["stopped-instance"]["monthly_cost"] == pytest.approx(30 * 0.08), "the volume it holds, as gp3"
    assert "1 volume(s), 30 GiB" in found["stopped-instance"]["detail"]
    assert report["notes"] == []
    theirs = cloud.billing.hygiene.report([bob.id])["items"]
    assert [(i["kind"], i["resource"]) for i in theirs] == [("unattached-volume", "vol-bobs")]
