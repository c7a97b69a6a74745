"""EBS on the EC2 wire: CreateVolume, DescribeVolumes, ModifyVolume,
DescribeVolumesModifications, DeleteVolume, AttachVolume, DetachVolume. Parse, one service
call, render."""
from __future__ import annotations

from emulator.errors import InvalidParameter

from . import filtering
from .params import boolean, dry_run, integer, mutating, required, tag_specifications, values
from .wire import iso

def _tag_set(tags: dict[str, str]) -> list[dict]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def _status(v) -> str:
    return "in-use" if v.root else v.state


ATTACHMENT_STATUS = {"attaching": "attaching", "detaching": "detaching"}  # else attached


def _attachment(v) -> dict:
    return {"volumeId": v.id, "instanceId": v.instance_id, "device": v.device,
            "status": "attached" if v.root else ATTACHMENT_STATUS.get(v.state, "attached"),
            "attachTime": iso(v.attached_at or v.created_at), "deleteOnTermination": v.delete_on_termination}


def _attachments(v) -> list[dict]:
    return [_attachment(v)] if v.instance_id else []


def volume_xml(cloud, v, tags: dict[str, str]) -> dict:
    return {
        "volumeId": v.id, "size": v.size_gib, "snapshotId": v.snapshot_id, "availabilityZone": v.zone(cloud.config.region),
        "status": _status(v), "createTime": iso(v.created_at), "attachmentSet": _attachments(v),
        "volumeType": v.volume_type, "iops": v.iops, "throughput": v.throughput, "encrypted": False,
        "multiAttachEnabled": False, "tagSet": _tag_set(tags),
    }


def describe_volumes(cloud, caller, p) -> dict:
    vols = cloud.describe_volumes(caller, values(p, "VolumeId") or None)
    tags = cloud.resource_tags.of(caller.id, [v.id for v in vols])
    region = cloud.config.region
    attached = lambda v: _attachment(v)["status"] if v.instance_id else None  # noqa: E731
    table = {"volume-id": lambda v: v.id, "attachment.instance-id": lambda v: v.instance_id,
             "attachment.device": lambda v: v.device, "attachment.status": attached,
             "attachment.delete-on-termination": lambda v: v.delete_on_termination if v.instance_id else None,
             "attachment.attach-time": lambda v: iso(v.attached_at or v.created_at) if v.instance_id else None,
             "create-time": lambda v: iso(v.created_at), "availability-zone": lambda v: v.zone(region),
             "status": _status, "volume-type": lambda v: v.volume_type, "size": lambda v: v.size_gib,
             "encrypted": lambda v: False, "snapshot-id": lambda v: v.snapshot_id,
             "multi-attach-enabled": lambda v: False, "iops": lambda v: v.iops, "throughput": lambda v: v.throughput}
    vols = filtering.apply(p, vols, table, tags=lambda v: tags.get(v.id, {}))
    vols, token = filtering.page(p, vols, low=5, high=500, ids_param="VolumeId")
    return {"volumeSet": [volume_xml(cloud, v, tags.get(v.id, {})) for v in vols], "nextToken": token}


def _refuse_unoffered(p) -> None:
    if boolean(p, "Encrypted") or p.get("KmsKeyId"):
        raise InvalidParameter("encrypted volumes are not offered: a volume is a qcow2 file on this host, readable "
                               "by its administrator", code="UnsupportedOperation")
    if boolean(p, "MultiAttachEnabled"):
        raise InvalidParameter("Multi-Attach is not offered (gp3 volumes attach to one instance at a time)",
                               code="InvalidParameterCombination")
    if p.get("OutpostArn"):
        raise InvalidParameter("there are no Outposts here", code="UnsupportedOperation")


@mutating
def create_volume(cloud, caller, p) -> dict:
    _refuse_unoffered(p)
    snapshot = p.get("SnapshotId") or None
    request = {"zone": required(p, "AvailabilityZone"), "size_gib": integer(p, "Size", high=1 << 40),
               "volume_type": p.get("VolumeType"), "iops": integer(p, "Iops", high=1 << 40),
               "throughput": integer(p, "Throughput", high=1 << 40),
               "tags": tag_specifications(p, ("volume",)).get("volume")}
    if snapshot:  # its size by default, never less
        request["size_gib"] = cloud.snapshot_for_volume(caller, snapshot, request["size_gib"])[1]
    cloud.volume_request(**request)
    dry_run(p)
    v = cloud.create_volume(caller, snapshot_id=snapshot, **request)
    return volume_xml(cloud, v, cloud.resource_tags.of(caller.id, [v.id]).get(v.id, {}))


@mutating
def delete_volume(cloud, caller, p) -> dict:
    vid = required(p, "VolumeId")
    cloud.describe_volumes(caller, [vid])
    dry_run(p)
    cloud.delete_volume(caller, vid)
    return {"return": True}


def _modification_xml(m: dict) -> dict:
    o, t = m["original"], m["target"]
    return {"volumeId": m["volume_id"], "modificationState": m["state"], "targetSize": t["size"],
            "targetIops": t["iops"], "targetVolumeType": t["type"], "targetThroughput": t["throughput"],
            "targetMultiAttachEnabled": False, "originalSize": o["size"], "originalIops": o["iops"],
            "originalVolumeType": o["type"], "originalThroughput": o["throughput"],
            "originalMultiAttachEnabled": False, "progress": m["progress"], "startTime": iso(m["started_at"]),
            "endTime": iso(m["finished_at"])}


@mutating
def modify_volume(cloud, caller, p) -> dict:
    vid = required(p, "VolumeId")
    if boolean(p, "MultiAttachEnabled"):
        raise InvalidParameter("Multi-Attach is not offered", code="InvalidParameterCombination")
    cloud.describe_volumes(caller, [vid])
    dry_run(p)
    m = cloud.modify_volume(caller, vid, size_gib=integer(p, "Size", high=1 << 40), volume_type=p.get("VolumeType"),
                            iops=integer(p, "Iops", high=1 << 40), throughput=integer(p, "Throughput", high=1 << 40))
    return {"volumeModification": _modification_xml(m)}


def describe_volumes_modifications(cloud, caller, p) -> dict:
    mods = cloud.describe_volume_modifications(caller, values(p, "VolumeId") or None)
    table = {"volume-id": lambda m: m["volume_id"], "modification-state": lambda m: m["state"],
             "target-size": lambda m: m["target"]["size"], "target-iops": lambda m: m["target"]["iops"],
             "target-volume-type": lambda m: m["target"]["type"], "original-size": lambda m: m["original"]["size"],
             "original-iops": lambda m: m["original"]["iops"], "original-volume-type": lambda m: m["original"]["type"],
             "start-time": lambda m: iso(m["started_at"])}
    mods = filtering.apply(p, mods, table)
    mods, token = filtering.page(p, mods, ids_param="VolumeId")
    return {"volumeModificationSet": [_modification_xml(m) for m in mods], "nextToken": token}


@mutating
def attach_volume(cloud, caller, p) -> dict:
    vid, iid, device = required(p, "VolumeId"), required(p, "InstanceId"), required(p, "Device")
    cloud.describe_volumes(caller, [vid])
    cloud.get_instance(caller, iid)
    dry_run(p)
    return _attachment(cloud.attach_volume(caller, vid, iid, device))


@mutating
def detach_volume(cloud, caller, p) -> dict:
    vid = required(p, "VolumeId")
    cloud.describe_volumes(caller, [vid])
    dry_run(p)
    return _attachment(cloud.detach_volume(caller, vid, instance_id=p.get("InstanceId") or None,
                                           device=p.get("Device") or None))
