"""Volumes at launch (RunInstances BlockDeviceMappings, REST block_devices) through the Cloud's
use cases over the fake engine and pool: volumes made and attached with the instance,
DeleteOnTermination, a larger root, bad mappings and quotas refused before anything is made,
a failed launch rolling back every volume it made, and reconcile after a dead launch."""
from __future__ import annotations

import pytest

from emulator.errors import EngineError, InvalidParameter, NotFound, QuotaExceeded
from emulator.services import Cloud
from emulator.volumes import GIB

from .test_volumes import FakePool, cloud  # noqa: F401 - the fixture


def own(cloud, who=None) -> list:
    return [v for v in cloud.volumes.data((who or cloud.me).id)]


def nothing_made(cloud, before_instances: int = 0) -> None:
    assert own(cloud) == [] and cloud.volume_pool.sizes == {}
    assert len(cloud.store.query("SELECT id FROM instances")) == before_instances


def test_launch_volumes_are_made_attached_and_released_by_delete_on_termination(cloud):  # noqa: F811
    fake = cloud.drivers["container"]
    inst = cloud.run_instance(cloud.me, image="tiny", block_devices=[
        {"device": "/dev/sdf", "size_gib": 2},
        {"device": "/dev/xvdg", "size_gib": 3, "delete_on_termination": False, "iops": 4000, "throughput": 200},
        {"device": "/dev/sdh", "no_device": True}])
    vols = {v.device: v for v in cloud.describe_volumes(cloud.me) if not v.root}
    assert set(vols) == {"/dev/sdf", "/dev/xvdg"}
    f, g = vols["/dev/sdf"], vols["/dev/xvdg"]
    assert (f.state, f.instance_id, f.size_gib, f.delete_on_termination) == ("in-use", inst.id, 2, True)
    assert (g.state, g.size_gib, g.iops, g.throughput, g.delete_on_termination) == ("in-use", 3, 4000, 200, False)
    assert {f.guest_device, g.guest_device} == {"/dev/vdc", "/dev/vdd"}
    assert set(fake.volume_disks(inst.engine_id)) == {f.id.replace("-", ""), g.id.replace("-", "")}
    assert f.zone(cloud.config.region) == cloud.describe_volumes(cloud.me, [f.id])[0].zone(cloud.config.region)
    assert cloud.volume_pool.sizes == {f.id: 2 * GIB, g.id: 3 * GIB}
    cloud.terminate_instance(cloud.me, inst.id)
    left = own(cloud)
    assert [(v.id, v.state, v.instance_id) for v in left] == [(g.id, "available", None)]
    assert cloud.volume_pool.sizes == {g.id: 3 * GIB}


def test_a_larger_root_is_the_root_volume_size(cloud):  # noqa: F811
    # an operator who says dockerd can size writable layers (storage-opt size)
    object.__setattr__(cloud.config, "container_disk_size", "2g")
    inst = cloud.run_instance(cloud.me, image="tiny", block_devices=[{"device": "/", "size_gib": 5}])
    [root] = [v for v in cloud.describe_volumes(cloud.me) if v.root]
    assert (root.instance_id, root.size_gib, root.device) == (inst.id, 5, "/")
    assert [c for c in cloud.drivers["container"].calls if c[0] == "launch"]
    with pytest.raises(InvalidParameter) as e:
        cloud.run_instance(cloud.me, image="tiny", block_devices=[{"device": "/", "size_gib": 0}])
    assert e.value.code == "InvalidParameterValue"


@pytest.mark.parametrize("mappings, code", [
    ([{"device": "/dev/sda1", "size_gib": 1}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf/../x", "size_gib": 1}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf", "size_gib": 1}, {"device": "/dev/xvdf", "size_gib": 1}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf"}], "MissingParameter"),
    ([{"size_gib": 1}], "MissingParameter"),
    ([{"device": "/dev/sdf", "size_gib": 0}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf", "size_gib": 16385}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf", "size_gib": "1"}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf", "size_gib": 1, "volume_type": "io2"}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf", "size_gib": 1, "iops": 10}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf", "size_gib": 1, "encrypted": True}], "UnsupportedOperation"),
    ([{"device": "/dev/sdf", "size_gib": 1, "delete_on_termination": "yes"}], "InvalidParameterValue"),
    ([{"device": "/dev/sdf", "size_gib": 1, "kms": "x"}], "InvalidParameterValue"),
    ([{"device": "/", "delete_on_termination": False}], "UnsupportedOperation"),
    ([{"device": "/", "no_device": True}], "UnsupportedOperation"),
    ([{"device": "/", "size_gib": 9}], "UnsupportedOperation"),  # no storage-opt size on this dockerd
    ([{"device": "/", "size_gib": 1}, {"device": "/", "size_gib": 1}], "InvalidParameterValue"),
    ("/dev/sdf", "InvalidParameterValue"),
    (["/dev/sdf"], "InvalidParameterValue"),
    ([{"device": f"/dev/sd{c}", "size_gib": 1} for c in "bcdefghijklmnopqrstuvwxyz"] * 2, "InvalidParameterValue"),
])
def test_bad_mappings_are_refused_before_anything_is_made(cloud, mappings, code):  # noqa: F811
    with pytest.raises(InvalidParameter) as e:
        cloud.run_instance(cloud.me, image="tiny", block_devices=mappings)
    assert e.value.code == code, e.value.message
    nothing_made(cloud)
    assert not cloud.drivers["container"].calls


def test_another_accounts_snapshot_is_not_found_and_nothing_is_made(cloud):  # noqa: F811
    with pytest.raises(NotFound) as e:
        cloud.run_instance(cloud.me, image="tiny",
                           block_devices=[{"device": "/dev/sdf", "snapshot_id": "snap-0123456789abcdef0"}])
    assert e.value.code == "InvalidSnapshot.NotFound"
    nothing_made(cloud)


def test_more_volumes_than_the_quota_are_refused_before_anything_is_made(cloud):  # noqa: F811
    four = [{"device": f"/dev/sd{c}", "size_gib": 1} for c in "fghi"]  # the quota is 3 volumes
    with pytest.raises(QuotaExceeded) as e:
        cloud.run_instance(cloud.me, image="tiny", block_devices=four)
    assert e.value.code == "VolumeLimitExceeded"
    nothing_made(cloud)
    two = four[:2]
    with pytest.raises(QuotaExceeded) as e:  # two instances of two volumes: refused before the first
        cloud.run_instances(cloud.me, count=2, image="tiny", block_devices=two)
    assert e.value.code == "VolumeLimitExceeded"
    nothing_made(cloud)
    with pytest.raises(QuotaExceeded) as e:  # 100 GiB in all
        cloud.run_instance(cloud.me, image="tiny", block_devices=[{"device": "/dev/sdf", "size_gib": 101}])
    assert e.value.code == "VolumeLimitExceeded"
    cloud.volume_pool.free = 1 * GIB
    with pytest.raises(QuotaExceeded) as e:
        cloud.run_instance(cloud.me, image="tiny", block_devices=[{"device": "/dev/sdf", "size_gib": 2}])
    assert e.value.code == "InsufficientVolumeCapacity"
    nothing_made(cloud)


class SecondFails(FakePool):
    def create(self, volume_id: str, size_bytes: int):
        if len(self.sizes) == 1:
            raise EngineError("libvirtd said: no room for the second")
        super().create(volume_id, size_bytes)


def test_a_failed_second_volume_rolls_back_the_first_and_the_instance(cloud):  # noqa: F811
    cloud.volume_pool = SecondFails()
    with pytest.raises(EngineError):
        cloud.run_instance(cloud.me, image="tiny", block_devices=[{"device": "/dev/sdf", "size_gib": 1},
                                                                  {"device": "/dev/sdg", "size_gib": 1}])
    nothing_made(cloud)
    assert not cloud.drivers["container"].calls


def test_a_failed_attach_rolls_back_every_launch_volume(cloud):  # noqa: F811
    fake = cloud.drivers["container"]
    fake.fail_attach = True
    with pytest.raises(EngineError):
        cloud.run_instance(cloud.me, image="tiny", block_devices=[
            {"device": "/dev/sdf", "size_gib": 1, "delete_on_termination": False}])
    assert own(cloud) == [] and cloud.volume_pool.sizes == {}
    assert [i.state for i in cloud.describe_instances(cloud.me)] == ["terminated"]
    assert fake.objects == {}


def test_a_failed_second_launch_of_a_reservation_takes_the_first_ones_volumes(cloud):  # noqa: F811
    fake = cloud.drivers["container"]
    launch = fake.launch
    seen = []

    def second_fails(spec):
        seen.append(spec.instance_id)
        if len(seen) == 2:
            raise EngineError("boom")
        return launch(spec)

    fake.launch = second_fails
    with pytest.raises(EngineError):
        cloud.run_instances(cloud.me, count=2, image="tiny", block_devices=[
            {"device": "/dev/sdf", "size_gib": 1, "delete_on_termination": False}])
    assert own(cloud) == [] and cloud.volume_pool.sizes == {}


def test_reconcile_removes_the_volumes_of_a_dead_launch_and_keeps_an_attached_one(cloud, tmp_path):  # noqa: F811
    inst = cloud.run_instance(cloud.me, image="tiny", block_devices=[{"device": "/dev/sdf", "size_gib": 1},
                                                                     {"device": "/dev/sdg", "size_gib": 1}])
    f, g = sorted((v for v in own(cloud)), key=lambda v: v.device)
    # As a server killed between making the volumes and attaching them would leave them:
    # still `creating`; one the engine holds, one it does not.
    cloud.drivers["container"].detach_volume(inst.engine_id, inst.id, g.id.replace("-", ""), g.device)
    for v in (f, g):
        cloud.volumes.update(v.id, state="creating")
    report = cloud.reconcile()["volumes"]
    assert {v.id: v.state for v in own(cloud)} == {f.id: "in-use"}
    assert cloud.volume_pool.sizes == {f.id: GIB}
    assert any(g.id in line and "removed" in line for line in report)


def test_reconcile_leaves_the_volumes_of_a_launch_this_server_performs(cloud):  # noqa: F811
    inst = cloud.run_instance(cloud.me, image="tiny", block_devices=[{"device": "/dev/sdf", "size_gib": 1}])
    [v] = own(cloud)
    cloud.volumes.update(v.id, state="creating")
    with cloud.store.tx() as c:
        op = cloud.journal.open_in(c, inst.id, "launch", step="volumes")
    cloud.reconcile_volumes()
    assert [x.state for x in own(cloud)] == ["creating"]
    cloud.journal.finish(op)


def test_launch_volumes_are_in_the_instances_zone(cloud):  # noqa: F811
    subnet = next(s for s in cloud.vpcs.subnets(cloud.me.id, cloud.config.region) if s.zone.endswith("c"))
    _, [inst] = cloud.run_instances_in_subnet(cloud.me, subnet_id=subnet.id, image="tiny",
                                              block_devices=[{"device": "/dev/sdf", "size_gib": 1}])
    [v] = own(cloud)
    assert v.zone(cloud.config.region) == subnet.zone


def test_a_cloud_without_launch_mappings_behaves_as_before(cloud):  # noqa: F811
    assert isinstance(cloud, Cloud)
    cloud.run_instance(cloud.me, image="tiny", block_devices=None)
    cloud.run_instance(cloud.me, image="tiny", block_devices=[{"device": "/", "size_gib": 1}])
    assert own(cloud) == []


def test_ec2_block_device_mappings_become_the_services_mappings():
    from api.ec2.launch_options import _block_devices

    p = {"BlockDeviceMapping.1.DeviceName": "/dev/vda", "BlockDeviceMapping.1.Ebs.VolumeSize": "4",
         "BlockDeviceMapping.1.Ebs.VolumeType": "gp2", "BlockDeviceMapping.1.Ebs.Encrypted": "false",
         "BlockDeviceMapping.2.DeviceName": "/dev/sdf", "BlockDeviceMapping.2.Ebs.SnapshotId": "snap-1",
         "BlockDeviceMapping.2.Ebs.DeleteOnTermination": "false", "BlockDeviceMapping.2.Ebs.Iops": "0",
         "BlockDeviceMapping.3.DeviceName": "/dev/sdg", "BlockDeviceMapping.3.NoDevice": ""}
    assert _block_devices(p, {"kind": "vm"}) == [
        {"device": "/dev/vda", "size_gib": 4, "encrypted": False},  # the root's gp2 is what the image is
        {"device": "/dev/sdf", "snapshot_id": "snap-1", "delete_on_termination": False},  # Iops 0: unset
        {"device": "/dev/sdg", "no_device": True}]
    assert _block_devices({}, {"kind": "vm"}) is None
    for key, val, code in [("Ebs.VolumeSize", "ten", "InvalidParameterValue"),
                           ("Ebs.VolumeSize", "9999999", "InvalidParameterValue"),
                           ("Ebs.DeleteOnTermination", "maybe", "InvalidParameterValue"),
                           ("VirtualName", "ephemeral0", "UnsupportedOperation"),
                           ("Ebs.KmsKeyId", "k", "UnsupportedOperation")]:
        with pytest.raises(InvalidParameter) as e:
            _block_devices({"BlockDeviceMapping.1.DeviceName": "/dev/sdf", f"BlockDeviceMapping.1.{key}": val},
                           {"kind": "vm"})
        assert e.value.code == code, key
