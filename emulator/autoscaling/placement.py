"""Where a group's members go in the VPC model: subnets named by VPCZoneIdentifier, and each
new member's network interface in its zone's subnet.

Built over the VPC registry of issue 13 (`cloud.vpcs`: `subnets(owner, region, ids)`,
`subnet_for(owner, region, subnet_id, zone)`, `attach(owner, instance_ids, subnet)`). Without
one, groups take availability zones only (every zone is this host).
"""
from __future__ import annotations

from ..errors import CloudError
from . import config as cfg


class VpcPlacement:
    def __init__(self, vpcs, region: str):
        self.vpcs, self.region = vpcs, region

    def subnets(self, owner: str, ids: list[str]) -> dict[str, tuple[str, str]]:
        """subnet id -> (VPC id, zone) for the owner's subnets; another account's is unknown."""
        try:
            return {s.id: (s.vpc_id, s.zone) for s in self.vpcs.subnets(owner, self.region, ids)}
        except CloudError as e:
            raise cfg.invalid(f"VPCZoneIdentifier: {e.message}") from None

    def subnet(self, owner: str, zone: str, subnet_id: str | None = None) -> str:
        """The subnet a new member in ZONE launches into: the group's for that zone, else the zone's
        default. Given to the launch itself, which with VPC networking puts the interface (and the
        address) there before `place` runs, and picks the security groups' VPC from it."""
        return self.vpcs.subnet_for(owner, self.region, subnet_id, zone).id

    def place(self, owner: str, instance_id: str, zone: str, subnet_id: str | None = None) -> None:
        self.vpcs.attach(owner, [instance_id], self.vpcs.subnet_for(owner, self.region, subnet_id, zone))
