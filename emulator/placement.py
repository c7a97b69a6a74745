"""Where each instance sits: its primary network interface (subnet, VPC, zone) and its root
volume. Both are records made once and kept (stable ids); an instance launched through
another front end (REST, CLI, console) gets them the first time EC2 looks at it."""
from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import CloudError
from .volumes import ROOT_DEVICE, Volume, root_size_gib
from .vpcs import NetworkInterface


@dataclass(frozen=True)
class Placement:
    interface: NetworkInterface
    volumes: tuple[Volume, ...]


def _root_size(cloud, inst) -> int:
    if inst.details.get("root_gib"):  # launched with a larger root device
        return int(inst.details["root_gib"])
    try:
        row = cloud.launch_image(inst.owner, inst.image, inst.kind)
    except CloudError:  # the image was removed since: the volume still has a size
        return 1
    return root_size_gib(inst.kind, row["ref"], json.loads(row["details"] or "{}"), row["size"])


def placements(cloud, owner: str, insts: list) -> dict[str, Placement]:
    """Placement of every instance that is not terminated (a terminated instance has
    neither: its interface and its DeleteOnTermination root volume went with it)."""
    live = [i for i in insts if i.state != "terminated"]
    if not live:
        return {}
    region = cloud.config.region
    enis = {n.instance_id: n for n in cloud.vpcs.interfaces(
        owner, region, {i.id: i.details.get("subnet_id") for i in live})}
    vols = cloud.volumes.for_instances(owner, [i.id for i in live])
    missing = [i for i in live if not any(v.root for v in vols.get(i.id, ()))]
    if missing:
        cloud.volumes.ensure_roots(owner, [(i.id, enis[i.id].zone_suffix, ROOT_DEVICE[i.kind], _root_size(cloud, i))
                                          for i in missing])
        vols = cloud.volumes.for_instances(owner, [i.id for i in live])
    return {i.id: Placement(enis[i.id], tuple(vols.get(i.id, ()))) for i in live}
