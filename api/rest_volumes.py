"""JSON REST for volumes under /api/v1 (the CLI and curl), over the Cloud's volume use cases.

    GET    /api/v1/volumes                  the caller's volumes (root volumes of live instances too)
    POST   /api/v1/volumes  {"size": GiB, "zone"?: "us-east-1a" (default: the region's first),
                             "type"?: "gp3", "iops"?, "throughput"?, "tags"?: {k: v}}
    GET    /api/v1/volumes/ID
    PATCH  /api/v1/volumes/ID  {"size"?, "iops"?, "throughput"?}   grow (never shrink)
    DELETE /api/v1/volumes/ID
    GET    /api/v1/volumes/ID/internals     its qcow2 file and chain; attached: the engine's disk or mount, the guest's name
    POST   /api/v1/volumes/ID/attach  {"instance_id", "device": "/dev/sdf"}
    POST   /api/v1/volumes/ID/detach
    GET    /api/v1/snapshots   POST /api/v1/snapshots {"volume_id", "description"?, "tags"?}
    POST   /api/v1/volumes  {"snapshot_id", "size"?}    a volume from a snapshot
    DELETE /api/v1/snapshots/ID
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from emulator.vpcs import ZONES

from .rest import _only, authenticated, body, cloud

bp = Blueprint("rest_volumes", __name__, url_prefix="/api/v1")


def volume_dict(v, tags: dict[str, str]) -> dict:
    c = cloud()
    return {"id": v.id, "size_gib": v.size_gib, "zone": v.zone(c.config.region), "type": v.volume_type,
            "iops": v.iops, "throughput": v.throughput, "state": "in-use" if v.root else v.state, "root": v.root,
            "instance_id": v.instance_id, "device": v.device, "guest_device": v.guest_device,
            "delete_on_termination": v.delete_on_termination if v.instance_id else None,
            "snapshot_id": v.snapshot_id or None, "created_at": v.created_at, "tags": tags}


def _render(vols) -> list[dict]:
    tags = cloud().resource_tags.of(g.account.id, [v.id for v in vols])
    return [volume_dict(v, tags.get(v.id, {})) for v in vols]


@bp.get("/volumes")
@authenticated
def list_volumes():
    return jsonify(volumes=_render(cloud().describe_volumes(g.account)))


@bp.post("/volumes")
@authenticated
def create_volume():
    data = _only(body(), {"size", "zone", "type", "iops", "throughput", "tags", "snapshot_id"})
    c = cloud()
    v = c.create_volume(g.account, snapshot_id=data.get("snapshot_id"),
                        zone=data.get("zone", c.config.region + ZONES[0]), size_gib=data.get("size"),
                        volume_type=data.get("type"), iops=data.get("iops"), throughput=data.get("throughput"),
                        tags=data.get("tags"))
    return jsonify(_render([v])[0]), 201


@bp.get("/volumes/<volume_id>")
@authenticated
def get_volume(volume_id: str):
    return jsonify(_render(cloud().describe_volumes(g.account, [volume_id]))[0])


@bp.get("/volumes/<volume_id>/internals")
@authenticated
def volume_internals(volume_id: str):
    return jsonify(cloud().volume_internals(g.account, volume_id))


@bp.patch("/volumes/<volume_id>")
@authenticated
def modify_volume(volume_id: str):
    data = _only(body(), {"size", "iops", "throughput"})
    m = cloud().modify_volume(g.account, volume_id, size_gib=data.get("size"), iops=data.get("iops"),
                              throughput=data.get("throughput"))
    return jsonify({**_render(cloud().describe_volumes(g.account, [volume_id]))[0], "modification": m})


@bp.delete("/volumes/<volume_id>")
@authenticated
def delete_volume(volume_id: str):
    cloud().delete_volume(g.account, volume_id)
    return "", 204


@bp.post("/volumes/<volume_id>/attach")
@authenticated
def attach_volume(volume_id: str):
    data = _only(body(), {"instance_id", "device"})
    cloud().attach_volume(g.account, volume_id, data.get("instance_id"), data.get("device", "/dev/sdf"))
    return jsonify(_render(cloud().describe_volumes(g.account, [volume_id]))[0])


@bp.post("/volumes/<volume_id>/detach")
@authenticated
def detach_volume(volume_id: str):
    _only(body(), set())
    cloud().detach_volume(g.account, volume_id)
    return jsonify(_render(cloud().describe_volumes(g.account, [volume_id]))[0])


def snapshot_dict(s, tags: dict[str, str]) -> dict:
    return {"id": s.id, "volume_id": s.volume_id, "volume_size_gib": s.volume_size, "state": s.state,
            "description": s.description, "stored_bytes": s.stored_bytes, "copied_from": s.source_snapshot_id or None,
            "created_at": s.created_at, "tags": tags}


@bp.get("/snapshots")
@authenticated
def list_snapshots():
    snaps = cloud().describe_snapshots(g.account)
    tags = cloud().resource_tags.of(g.account.id, [s.id for s in snaps])
    return jsonify(snapshots=[snapshot_dict(s, tags.get(s.id, {})) for s in snaps])


@bp.post("/snapshots")
@authenticated
def create_snapshot():
    data = _only(body(), {"volume_id", "description", "tags"})
    s = cloud().create_snapshot(g.account, data.get("volume_id"), description=data.get("description"),
                                tags=data.get("tags"))
    return jsonify(snapshot_dict(s, cloud().resource_tags.of(g.account.id, [s.id]).get(s.id, {}))), 201


@bp.delete("/snapshots/<snapshot_id>")
@authenticated
def delete_snapshot(snapshot_id: str):
    cloud().delete_snapshot(g.account, snapshot_id)
    return "", 204
