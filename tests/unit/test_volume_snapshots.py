"""Snapshot use cases over a fake pool and engine (qemu-img recorded, not run): who copies
the data (the engine for an attached volume, qemu-img otherwise), the rules around sizes,
root volumes and other accounts, rollback of a failed copy, and billing of stored bytes."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.errors import EngineError, InvalidParameter, NotFound
from emulator.volumes import snapshots as snapshots_module

from .test_volumes import cloud, zone  # noqa: F401 - the fixture


@pytest.fixture
def copies(monkeypatch):
    """qemu-img as a recorder that writes its target (4 KiB of 'data')."""
    made: list[list[str]] = []

    def fake(args, what, timeout=3600):
        made.append(args)
        if getattr(fake, "fail", False):
            raise EngineError(f"{what}: qemu-img: no")
        if not args[-1].startswith("/pool"):  # the fake pool has no files
            Path(args[-1]).write_bytes(b"d" * 4096)

    monkeypatch.setattr(snapshots_module, "qemu_img", fake)
    return fake, made


def test_a_snapshot_outlives_its_volume_and_a_volume_is_made_from_it(cloud, copies):  # noqa: F811
    fake, made = copies
    v = cloud.create_volume(cloud.me, zone=zone(cloud), size_gib=2)
    s = cloud.create_snapshot(cloud.me, v.id, description="before", tags={"k": "v"})
    assert (s.state, s.volume_id, s.volume_size, s.description, s.stored_bytes > 0) == (
        "completed", v.id, 2, "before", True)
    assert made[-1][:3] == ["convert", "-O", "qcow2"] and made[-1][-1].endswith(f"{s.id}.qcow2")
    cloud.delete_volume(cloud.me, v.id)
    assert cloud.describe_snapshots(cloud.me, [s.id]) == [s]
    with pytest.raises(InvalidParameter) as e:
        cloud.create_volume(cloud.me, zone=zone(cloud), size_gib=1, snapshot_id=s.id)
    assert "smaller than snapshot" in e.value.message
    restored = cloud.create_volume(cloud.me, zone=zone(cloud), snapshot_id=s.id)
    assert (restored.size_gib, restored.snapshot_id) == (2, s.id)
    assert made[-1][:2] == ["convert", "-n"] and made[-1][-1] == f"/pool/{restored.id}.qcow2"
    items = {i.id: i for i in cloud.billing.meter._blocks()}
    assert items[s.id].kind == "snapshot" and 0 < items[s.id].size_gib < 0.01  # stored bytes, not the volume's size
    with pytest.raises(NotFound):
        cloud.describe_snapshots(cloud.other, [s.id])
    with pytest.raises(NotFound):
        cloud.create_volume(cloud.other, zone=zone(cloud), snapshot_id=s.id)
    copy = cloud.copy_snapshot(cloud.me, s.id)
    assert copy.source_snapshot_id == s.id and copy.volume_id == v.id
    cloud.delete_snapshot(cloud.me, s.id)
    assert [x.id for x in cloud.describe_snapshots(cloud.me)] == [copy.id]
    assert not cloud.snapshot_file(s.id).exists() and cloud.snapshot_file(copy.id).exists()


def test_an_attached_volume_is_copied_by_its_engine_and_a_failure_leaves_nothing(cloud, copies):  # noqa: F811
    fake, made = copies
    inst = cloud.run_instance(cloud.me, image="tiny")
    [root] = cloud.describe_volumes(cloud.me)
    v = cloud.create_volume(cloud.me, zone=root.zone(cloud.config.region), size_gib=1)
    cloud.attach_volume(cloud.me, v.id, inst.id, "/dev/sdf")
    engine = cloud.drivers["container"]
    asked = []

    def snapshot_volume(engine_id, instance_id, serial, device, source, target):
        asked.append((instance_id, serial, device))
        Path(target).write_bytes(b"x" * 8192)
        return True

    engine.snapshot_volume = snapshot_volume
    s = cloud.create_snapshot(cloud.me, v.id)
    assert asked == [(inst.id, v.id.replace("-", ""), "/dev/sdf")] and s.state == "completed"
    before = len(made)
    engine.snapshot_volume = lambda *a: (_ for _ in ()).throw(EngineError("backup failed"))
    with pytest.raises(EngineError):
        cloud.create_snapshot(cloud.me, v.id)
    assert [x.id for x in cloud.describe_snapshots(cloud.me)] == [s.id] and len(made) == before
    assert sorted(p.name for p in cloud.snapshot_dir.iterdir()) == [f"{s.id}.qcow2"]
    rs = cloud.create_snapshot(cloud.me, root.id)  # a container's root: an engine image, no file
    assert (rs.root_kind, rs.engine_ref) == ("container", engine.images[rs.id])
    assert sorted(p.name for p in cloud.snapshot_dir.iterdir()) == [f"{s.id}.qcow2"]
    for call in (lambda: cloud.create_volume(cloud.me, zone=root.zone(cloud.config.region), snapshot_id=rs.id),
                 lambda: cloud.copy_snapshot(cloud.me, rs.id)):
        with pytest.raises(InvalidParameter) as e:
            call()
        assert e.value.code == "UnsupportedOperation"
    cloud.delete_snapshot(cloud.me, rs.id)
    assert engine.images == {}
    with pytest.raises(InvalidParameter):
        cloud.create_snapshot(cloud.me, v.id, description="x" * 256)
