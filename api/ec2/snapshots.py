"""EBS snapshots on the EC2 wire: CreateSnapshot, DescribeSnapshots, CopySnapshot,
DeleteSnapshot. Parse, one service call, render."""
from __future__ import annotations

from emulator.errors import InvalidParameter

from . import filtering
from .params import boolean, dry_run, mutating, required, tag_specifications, values
from .wire import iso


def snapshot_xml(caller, s, tags: dict[str, str]) -> dict:
    return {"snapshotId": s.id, "volumeId": s.volume_id, "status": s.state, "startTime": iso(s.created_at),
            "progress": "100%" if s.state == "completed" else "0%", "ownerId": caller.id, "volumeSize": s.volume_size,
            "description": s.description, "encrypted": False, "storageTier": "standard",
            "tagSet": [{"key": k, "value": v} for k, v in tags.items()]}


def _render(cloud, caller, s) -> dict:
    return snapshot_xml(caller, s, cloud.resource_tags.of(caller.id, [s.id]).get(s.id, {}))


def _refuse_encryption(p) -> None:
    if boolean(p, "Encrypted") or p.get("KmsKeyId"):
        raise InvalidParameter("encrypted snapshots are not offered: a snapshot is a qcow2 file on this host",
                               code="UnsupportedOperation")


@mutating
def create_snapshot(cloud, caller, p) -> dict:
    vid = required(p, "VolumeId")
    tags = tag_specifications(p, ("snapshot",)).get("snapshot")
    cloud.describe_volumes(caller, [vid])
    dry_run(p)
    return _render(cloud, caller, cloud.create_snapshot(caller, vid, description=p.get("Description"), tags=tags))


def describe_snapshots(cloud, caller, p) -> dict:
    owners = values(p, "OwnerId") or values(p, "Owner")
    snaps = cloud.describe_snapshots(caller, values(p, "SnapshotId") or None)
    if owners and not {"self", caller.id} & set(owners):
        snaps = []  # nobody shares snapshots here: another owner's list is empty
    tags = cloud.resource_tags.of(caller.id, [s.id for s in snaps])
    table = {"snapshot-id": lambda s: s.id, "volume-id": lambda s: s.volume_id, "status": lambda s: s.state,
             "owner-id": lambda s: caller.id, "volume-size": lambda s: s.volume_size,
             "description": lambda s: s.description, "start-time": lambda s: iso(s.created_at),
             "progress": lambda s: "100%" if s.state == "completed" else "0%", "encrypted": lambda s: False,
             "storage-tier": lambda s: "standard"}
    snaps = filtering.apply(p, snaps, table, tags=lambda s: tags.get(s.id, {}))
    snaps, token = filtering.page(p, snaps, low=5, high=1000, ids_param="SnapshotId")
    return {"snapshotSet": [snapshot_xml(caller, s, tags.get(s.id, {})) for s in snaps], "nextToken": token}


@mutating
def copy_snapshot(cloud, caller, p) -> dict:
    _refuse_encryption(p)
    source = required(p, "SourceSnapshotId")
    region = required(p, "SourceRegion")
    if region != cloud.config.region:
        raise InvalidParameter(f"this cloud has one region ({cloud.config.region}); the snapshot cannot come from "
                               f"{region[:40]}", code="InvalidParameterValue")
    tags = tag_specifications(p, ("snapshot",)).get("snapshot")
    cloud.describe_snapshots(caller, [source])
    dry_run(p)
    snap = cloud.copy_snapshot(caller, source, description=p.get("Description"), tags=tags)
    return {"snapshotId": snap.id, "tagSet": [{"key": k, "value": v} for k, v in (tags or {}).items()]}


@mutating
def delete_snapshot(cloud, caller, p) -> dict:
    sid = required(p, "SnapshotId")
    cloud.describe_snapshots(caller, [sid])
    dry_run(p)
    cloud.delete_snapshot(caller, sid)
    return {"return": True}
