"""Images on the EC2 wire: DescribeImages (the catalog's and the caller's own), CreateImage,
RegisterImage, DeregisterImage. Parse, one service call, render.

The caller's own images (emulator/amis.py) are described in the catalog's shape with what
differs: the caller owns them, they are private, named as asked, and their root device names
the snapshot they were made from."""
from __future__ import annotations

from emulator.errors import InvalidParameter, NotFound
from emulator.volumes import GIB

from . import filtering
from .catalog import AMI, CATALOG_ALIAS, CATALOG_OWNER, IMAGE_FILTERS, _image_tags, _image_xml, all_amis, catalog_ami
from .params import boolean, dry_run, members, mutating, required, tag_specifications, values


def _own(a) -> dict:
    """An image of the caller's in the shape the catalog's have (what _image_xml reads)."""
    return {**a.details, "id": a.id, "name": a.name, "kind": a.kind, "ref": a.ref, "size": a.size_gib * GIB,
            "built_at": a.created_at, "own": a}


def own_amis(cloud, caller, ids: list[str] | None = None) -> list[dict]:
    return [_own(a) for a in cloud.describe_machine_images(caller, ids)]


def resolve_ami(cloud, caller, image_id: str) -> dict:
    """The image RunInstances launches: the catalog's, or one of the caller's own (another
    account's answers as a missing one)."""
    found = catalog_ami(cloud, image_id)
    if found is not None:
        return found
    try:
        [ami] = own_amis(cloud, caller, [image_id])
    except NotFound:
        raise NotFound(f"The image id '[{image_id}]' does not exist", code="InvalidAMIID.NotFound") from None
    if ami["own"].state != "available":
        raise InvalidParameter(f"Image {image_id} is {ami['own'].state}", code="InvalidAMIID.Unavailable")
    return ami


def _xml(cloud, caller, ami: dict, tags: dict) -> dict:
    out = _image_xml(ami)
    a = ami.get("own")
    if a is None:
        return out
    out.update({"imageLocation": f"{a.owner}/{a.name}", "imageState": a.state, "imageOwnerId": a.owner,
                "imageOwnerAlias": None, "isPublic": False, "name": a.name, "description": a.description,
                "sourceInstanceId": a.source_instance_id or None,
                "tagSet": [{"key": k, "value": v} for k, v in tags.items()]})
    out["blockDeviceMapping"][0]["ebs"]["snapshotId"] = a.snapshot_id
    return out


def _field(own, catalog):
    return lambda a: own(a["own"]) if a.get("own") is not None else catalog(a)


FILTERS = {**IMAGE_FILTERS,
           "name": _field(lambda o: o.name, IMAGE_FILTERS["name"]),
           "owner-id": _field(lambda o: o.owner, IMAGE_FILTERS["owner-id"]),
           "owner-alias": _field(lambda o: None, IMAGE_FILTERS["owner-alias"]),
           "state": _field(lambda o: o.state, IMAGE_FILTERS["state"]),
           "is-public": _field(lambda o: False, IMAGE_FILTERS["is-public"]),
           "description": _field(lambda o: o.description, IMAGE_FILTERS["description"]),
           "block-device-mapping.snapshot-id": _field(lambda o: o.snapshot_id, lambda a: None)}


def describe_images(cloud, caller, p) -> dict:
    ids = values(p, "ImageId")
    for i in ids:
        if catalog_ami(cloud, i) is None:
            own_amis(cloud, caller, [i])  # malformed, missing, another account's: the AWS error
    catalog, mine = all_amis(cloud), own_amis(cloud, caller)
    owners = set(values(p, "Owner"))
    if owners:
        # Catalog images are the cloud's; `self` (or the caller's id) finds the caller's own; AWS's aliases none.
        catalog = catalog if owners & {CATALOG_OWNER, CATALOG_ALIAS} else []
        mine = mine if owners & {"self", caller.id} else []
    amis = catalog + mine
    if ids:
        amis = [a for a in amis if a["id"] in ids]
    tags = cloud.resource_tags.of(caller.id, [a["id"] for a in mine])
    amis = filtering.apply(p, amis, FILTERS, tags=lambda a: tags.get(a["id"], {}) if a.get("own") else _image_tags(a))
    amis, token = filtering.page(p, amis, low=1, high=1000, ids_param="ImageId")
    return {"imagesSet": [_xml(cloud, caller, a, tags.get(a["id"], {})) for a in amis], "nextToken": token}


def _image_tags_asked(p) -> tuple[dict, dict]:
    sets = tag_specifications(p, ("image", "snapshot"))
    return sets.get("image", {}), sets.get("snapshot", {})


@mutating
def create_image(cloud, caller, p) -> dict:
    iid, name = required(p, "InstanceId"), required(p, "Name")
    image_tags, snapshot_tags = _image_tags_asked(p)
    for bdm in members(p, "BlockDeviceMapping"):
        raise InvalidParameter(f"BlockDeviceMapping {str(bdm.get('DeviceName'))[:40]}: an image holds its "
                               "instance's root device only", code="UnsupportedOperation")
    no_reboot = boolean(p, "NoReboot")
    cloud.get_instance(caller, iid)
    dry_run(p)
    ami = cloud.create_image(caller, iid, name=name, description=p.get("Description"), no_reboot=no_reboot,
                             tags=image_tags)
    if snapshot_tags:
        cloud.resource_tags.set(caller.id, [ami.snapshot_id], snapshot_tags)
    return {"imageId": ami.id}


def _register_snapshot(p) -> str:
    """The snapshot of RegisterImage's root device (BlockDeviceMapping.N.Ebs.SnapshotId)."""
    root = p.get("RootDeviceName")
    mappings = members(p, "BlockDeviceMapping")
    if p.get("ImageLocation") or not mappings:
        raise InvalidParameter("register an image from a snapshot of a root volume: RootDeviceName and "
                               "BlockDeviceMapping.1.Ebs.SnapshotId (an image location in S3 is not served)",
                               code="InvalidParameterValue" if mappings else "MissingParameter")
    if len(mappings) > 1 or (root is not None and mappings[0].get("DeviceName") not in (None, root)):
        raise InvalidParameter("an image holds one device, its root: one BlockDeviceMapping, at RootDeviceName",
                               code="InvalidBlockDeviceMapping")
    sid = mappings[0].get("Ebs.SnapshotId")
    if not sid:
        raise InvalidParameter("the root device mapping needs Ebs.SnapshotId", code="InvalidBlockDeviceMapping")
    return sid


@mutating
def register_image(cloud, caller, p) -> dict:
    name = required(p, "Name")
    sid = _register_snapshot(p)
    if p.get("Architecture", "x86_64") != "x86_64" or p.get("VirtualizationType", "hvm") != "hvm":
        raise InvalidParameter("images here are x86_64 and hvm", code="InvalidParameterValue")
    image_tags, _ = _image_tags_asked(p)
    cloud.describe_snapshots(caller, [sid])
    dry_run(p)
    ami = cloud.register_image(caller, name=name, snapshot_id=sid, root_device_name=p.get("RootDeviceName"),
                               description=p.get("Description"), tags=image_tags)
    return {"imageId": ami.id}


@mutating
def deregister_image(cloud, caller, p) -> dict:
    image_id = required(p, "ImageId")
    if AMI.fullmatch(image_id) and catalog_ami(cloud, image_id) is not None:
        raise InvalidParameter(f"{image_id} is a catalog image (pocketcloud's, shared by every account): "
                               "`pocketcloud images` manages the catalog", code="AuthFailure")
    cloud.describe_machine_images(caller, [image_id])
    dry_run(p)
    cloud.deregister_image(caller, image_id)
    return {"return": True}
