"""JSON REST for volumes under /api/v1 (the CLI and curl), over the Cloud's volume use cases.

    GET    /api/v1/volumes                  the caller's volumes (root volumes of live instances too)
    POST   /api/v1/volumes  {"size": GiB, "zone"?: "us-east-1a" (default: the region's first),
                             "type"?: "gp3", "iops"?, "throughput"?, "tags"?: {k: v}}
    GET    /api/v1/volumes/ID
    PATCH  /api/v1/volumes/ID  {"size"?, "iops"?, "throughput"?}   grow (never shrink)
    DELETE /api/v1/volumes/ID
    GET    /api/v1/volumes/ID/internals     its qcow2 file and chain, where the instance sees it
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
    data = _only(body(), {"size", "zone", "type", "iops", "throughput", "tags"})
    c = cloud()
    v = c.create_volume(g.account, zone=data.get("zone", c.config.region + ZONES[0]), size_gib=data.get("size"),
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
