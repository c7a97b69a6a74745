"""Volumes (issue 15) through the Cloud's use cases, over a fake pool and a fake engine: the
lifecycle, bad input that changes nothing, quotas, host capacity, growth, rollback of a failed
create, the billing source, and the adoption of root-volume records made before schema 10."""
from __future__ import annotations

import sqlite3

import pytest

from emulator.config import Config
from emulator.errors import EngineError, InvalidParameter, InvalidState, NotFound, QuotaExceeded
from emulator.services import Cloud
from emulator.state import MIGRATIONS, Store
from emulator.volumes import GIB

from tests.fakes import FakeDriver


class FakePool:
    """The libvirt pool's surface: a file per volume, sizes in bytes, a chosen free space."""

    def __init__(self, free: int = 1000 * GIB):
        self.sizes: dict[str, int] = {}
        self.written: dict[str, int] = {}
        self.free = free
        self.fail_create = False

    def create(self, volume_id: str, size_bytes: int):
        if self.fail_create:
            raise EngineError("libvirtd said: no")
        self.sizes[volume_id] = size_bytes

    def delete(self, volume_id: str) -> None:
        self.sizes.pop(volume_id, None)

    def grow(self, volume_id: str, size_bytes: int) -> None:
        assert size_bytes >= self.sizes[volume_id]
        self.sizes[volume_id] = size_bytes

    def file(self, volume_id: str):
        return f"/pool/{volume_id}.qcow2"

    def allocated(self, volume_id: str) -> int:
        return self.written.get(volume_id, 0)

    def free_bytes(self) -> int:
        return self.free

    def files(self) -> list[str]:
        return sorted(self.sizes)


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    monkeypatch.setattr("emulator.vpcs.host_taken", lambda: {"10.0.0.0/16"})  # no host scan in unit tests
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none", max_volumes=3, max_volume_gib=100),
              drivers={"container": FakeDriver()})
    c.volume_pool = FakePool()
    c.images.register("tiny", "container", "fake:tiny", "test")
    c.me = c.accounts.create("student")[0]
    c.other = c.accounts.create("other")[0]
    return c


def zone(cloud, suffix="a") -> str:
    return cloud.config.region + suffix


def test_a_volume_is_created_available_described_tagged_and_deleted(cloud):
    me = cloud.me
    inst = cloud.run_instance(me, image="tiny")
    v = cloud.create_volume(me, zone=zone(cloud, "b"), size_gib=8, tags={"Name": "data"})
    assert (v.state, v.size_gib, v.volume_type, v.iops, v.throughput, v.root) == ("available", 8, "gp3", 3000, 125, False)
    assert v.zone(cloud.config.region) == zone(cloud, "b") and v.instance_id is None
    assert cloud.volume_pool.sizes == {v.id: 8 * GIB}
    assert cloud.resource_tags.of(me.id, [v.id]) == {v.id: {"Name": "data"}}
    listed = cloud.describe_volumes(me)
    assert [x.id for x in listed if x.root] and [x.instance_id for x in listed if x.root] == [inst.id]
    assert [x.id for x in listed if not x.root] == [v.id]
    assert cloud.describe_volumes(me, [v.id]) == [v]
    for who in (cloud.other,):  # another account's volume answers like a missing one, and stays
        with pytest.raises(NotFound) as e:
            cloud.delete_volume(who, v.id)
        assert e.value.code == "InvalidVolume.NotFound"
        assert cloud.describe_volumes(who) == []
    cloud.delete_volume(me, v.id)
    assert cloud.volume_pool.sizes == {} and cloud.resource_tags.of(me.id, [v.id]) == {}
    with pytest.raises(NotFound):
        cloud.delete_volume(me, v.id)


def test_a_root_volume_is_not_deleted_nor_resized_through_the_volume_calls(cloud):
    cloud.run_instance(cloud.me, image="tiny")
    [root] = cloud.describe_volumes(cloud.me)
    with pytest.raises(InvalidState) as e:
        cloud.delete_volume(cloud.me, root.id)
    assert e.value.code == "VolumeInUse"
    with pytest.raises(InvalidParameter) as e:
        cloud.modify_volume(cloud.me, root.id, size_gib=root.size_gib + 1)
    assert e.value.code == "UnsupportedOperation"


@pytest.mark.parametrize("request_, code", [
    ({"zone": "us-east-1z", "size_gib": 1}, "InvalidParameterValue"),
    ({"zone": "eu-west-1a", "size_gib": 1}, "InvalidParameterValue"),
    ({"zone": None, "size_gib": 1}, "InvalidParameterValue"),
    ({"zone": "us-east-1a"}, "MissingParameter"),
    ({"zone": "us-east-1a", "size_gib": 0}, "InvalidParameterValue"),
    ({"zone": "us-east-1a", "size_gib": 16385}, "InvalidParameterValue"),
    ({"zone": "us-east-1a", "size_gib": "8"}, "InvalidParameterValue"),
    ({"zone": "us-east-1a", "size_gib": True}, "InvalidParameterValue"),
    ({"zone": "us-east-1a", "size_gib": 1, "volume_type": "io1"}, "InvalidParameterValue"),
    ({"zone": "us-east-1a", "size_gib": 1, "volume_type": "<x/>"}, "InvalidParameterValue"),
    ({"zone": "us-east-1a", "size_gib": 1, "iops": 2999}, "InvalidParameterValue"),
    ({"zone": "us-east-1a", "size_gib": 1, "throughput": 1001}, "InvalidParameterValue"),
    ({"zone": "us-east-1a", "size_gib": 1, "tags": {"aws:x": "y"}}, "InvalidParameterValue"),
])
def test_bad_requests_are_refused_and_change_nothing(cloud, request_, code):
    with pytest.raises(InvalidParameter) as e:
        cloud.create_volume(cloud.me, **request_)
    assert e.value.code == code
    assert cloud.volumes.data() == [] and cloud.volume_pool.sizes == {}


def test_quotas_count_volumes_and_gib_per_account(cloud):
    me = cloud.me
    cloud.create_volume(me, zone=zone(cloud), size_gib=60)
    with pytest.raises(QuotaExceeded) as e:
        cloud.create_volume(me, zone=zone(cloud), size_gib=41)
    assert e.value.code == "VolumeLimitExceeded" and "100 GiB" in e.value.message
    cloud.create_volume(me, zone=zone(cloud), size_gib=40)
    assert cloud.create_volume(cloud.other, zone=zone(cloud), size_gib=100)  # quotas are each account's own
    cloud.config = cloud.config.with_(max_volume_gib=1000)
    cloud.create_volume(me, zone=zone(cloud), size_gib=1)
    with pytest.raises(QuotaExceeded) as e:
        cloud.create_volume(me, zone=zone(cloud), size_gib=1)
    assert e.value.code == "VolumeLimitExceeded" and "3 per account" in e.value.message
    assert len(cloud.volumes.data(me.id)) == 3


def test_capacity_counts_what_volumes_may_still_write_against_free_space(cloud):
    pool = cloud.volume_pool
    pool.free = 10 * GIB
    a = cloud.create_volume(cloud.me, zone=zone(cloud), size_gib=6)
    with pytest.raises(QuotaExceeded) as e:  # 6 promised + 5 asked > 10 free
        cloud.create_volume(cloud.other, zone=zone(cloud), size_gib=5)
    assert e.value.code == "InsufficientVolumeCapacity"
    pool.written[a.id], pool.free = 6 * GIB, 4 * GIB  # the volume was filled: nothing more is promised
    cloud.create_volume(cloud.other, zone=zone(cloud), size_gib=4)
    cloud.config = cloud.config.with_(volume_overcommit=2.0)  # over-commit: room for twice the free space
    pool.free = 2 * GIB
    with pytest.raises(QuotaExceeded):
        cloud.modify_volume(cloud.me, a.id, size_gib=7)  # 4 GiB unwritten + 1 more > 2 x 2 GiB free
    pool.free = 3 * GIB
    cloud.modify_volume(cloud.me, a.id, size_gib=7)
    assert pool.sizes[a.id] == 7 * GIB


def test_a_volume_only_grows_and_each_change_is_a_completed_modification(cloud, wall):
    me = cloud.me
    v = cloud.create_volume(me, zone=zone(cloud), size_gib=2)
    with pytest.raises(InvalidParameter) as e:
        cloud.modify_volume(me, v.id, size_gib=1)
    assert "smaller" in e.value.message
    with pytest.raises(InvalidParameter) as e:
        cloud.modify_volume(me, v.id, size_gib=2)
    assert e.value.code == "InvalidParameterCombination"
    with pytest.raises(InvalidParameter):
        cloud.modify_volume(me, v.id, volume_type="gp2")
    assert cloud.describe_volume_modifications(me) == []
    wall.advance(5)
    m = cloud.modify_volume(me, v.id, size_gib=3, iops=4000)
    assert (m["state"], m["original"]["size"], m["target"]["size"], m["target"]["iops"]) == ("completed", 2, 3, 4000)
    assert cloud.volume_pool.sizes[v.id] == 3 * GIB
    assert cloud.describe_volumes(me, [v.id])[0].size_gib == 3
    assert cloud.describe_volume_modifications(me, [v.id]) == [m]
    with pytest.raises(NotFound):
        cloud.describe_volume_modifications(cloud.other, [v.id])
    with pytest.raises(NotFound):
        cloud.modify_volume(cloud.other, v.id, size_gib=9)
    assert cloud.volume_pool.sizes[v.id] == 3 * GIB


def test_a_failed_create_leaves_no_record_no_tags_and_no_quota_used(cloud):
    cloud.volume_pool.fail_create = True
    with pytest.raises(EngineError):
        cloud.create_volume(cloud.me, zone=zone(cloud), size_gib=100, tags={"k": "v"})
    assert cloud.volumes.data() == [] and cloud.resource_tags.of(cloud.me.id) == {}
    cloud.volume_pool.fail_create = False
    assert cloud.create_volume(cloud.me, zone=zone(cloud), size_gib=100).state == "available"


def test_the_billing_meter_sees_every_accounts_volumes(cloud):
    a = cloud.create_volume(cloud.me, zone=zone(cloud), size_gib=5, tags={"team": "x"})
    b = cloud.create_volume(cloud.other, zone=zone(cloud), size_gib=7)
    items = {i.id: i for i in cloud.billing.meter._blocks()}
    assert set(items) == {a.id, b.id}
    assert (items[a.id].account, items[a.id].size_gib, items[a.id].kind, items[a.id].tags) == (
        cloud.me.id, 5.0, "volume", {"team": "x"})
    assert items[b.id].attached_to is None and items[b.id].state == "available"


def test_root_volume_records_made_before_schema_10_keep_their_ids(tmp_path):
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)
    for i, migration in enumerate(MIGRATIONS[:9]):
        for stmt in migration.split(";"):
            if stmt.strip():
                conn.execute(stmt)
    conn.execute("INSERT INTO accounts (id, name, role, created_at) VALUES ('123456789012', 'a', 'user', 0)")
    conn.execute("INSERT INTO instances (id, owner, name, kind, image, type, state, created_at, updated_at) "
                 "VALUES ('i-0123456789abcdef0', '123456789012', 'n', 'vm', 'tiny', 't2.nano', 'running', 0, 0)")
    conn.execute("INSERT INTO volumes (id, owner, instance_id, zone_suffix, size_gib, volume_type, iops, throughput,"
                 " device, delete_on_termination, created_at) VALUES ('vol-0123456789abcdef0', '123456789012',"
                 " 'i-0123456789abcdef0', 'a', 1, 'gp3', 3000, 125, '/dev/vda', 1, 5)")
    conn.execute("PRAGMA user_version = 9")
    conn.commit()
    conn.close()
    store = Store(db)
    [row] = store.query("SELECT * FROM volumes")
    assert (row["id"], row["root"], row["state"], row["instance_id"]) == (
        "vol-0123456789abcdef0", 1, "in-use", "i-0123456789abcdef0")
    store.close()


def test_hygiene_names_an_unattached_volume_with_its_cleanup(cloud):
    v = cloud.create_volume(cloud.me, zone=zone(cloud), size_gib=20)
    report = cloud.billing.hygiene.report([cloud.me.id])
    assert [(i["kind"], i["resource"], i["cleanup"]) for i in report["items"]] == [
        ("unattached-volume", v.id, f"aws ec2 delete-volume --volume-id {v.id}")]


def test_the_reconcile_pass_waits_for_a_volume_being_created_here(cloud):
    """A periodic pass that meets a `creating` volume of this server's waits for it (it rolls
    back only a dead server's): it once deleted the file of a CreateVolume from a snapshot."""
    import threading

    passes: list[threading.Thread] = []
    create = cloud.volume_pool.create

    def create_while_reconciling(volume_id, size_bytes):
        t = threading.Thread(target=cloud.reconcile_volumes)
        t.start()
        passes.append(t)
        t.join(timeout=0.3)
        assert t.is_alive(), "the pass did not wait for the volume's lock"
        create(volume_id, size_bytes)

    cloud.volume_pool.create = create_while_reconciling
    v = cloud.create_volume(cloud.me, zone=zone(cloud), size_gib=1)
    passes[0].join(timeout=10)
    assert not passes[0].is_alive()
    assert cloud.volumes.get(cloud.me.id, v.id).state == "available" and v.id in cloud.volume_pool.sizes
