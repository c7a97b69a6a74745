"""Real EC2 actions that pocketcloud does not serve yet, refused by name with the piece of
the cloud that will bring them.

Without this table such a call was `InvalidAction` ("not valid for this web service") with
the list of every action pocketcloud serves: true, but a Terraform user with an
`aws_ebs_volume` or an `aws_eip` learnt nothing about why. EC2 itself answers
`UnsupportedOperation` for what a region or account cannot do, so that is the code here.
Reads are not listed: an action pocketcloud serves answers what exists; the rest stay
`InvalidAction`. A later feature that implements one of these puts its handler in the
action table, which wins over this one.
"""
from __future__ import annotations

from emulator.errors import InvalidParameter

from .params import mutating

LATER = {
    "block storage's multi-volume snapshots": ("CreateSnapshots",),
    "VPC networking (addresses, gateways, route tables, interfaces and peering beyond the default VPC)": (
        "AllocateAddress", "AssociateAddress", "DisassociateAddress", "ReleaseAddress", "CreateInternetGateway",
        "AttachInternetGateway", "DetachInternetGateway", "DeleteInternetGateway", "CreateNatGateway",
        "DeleteNatGateway", "CreateRouteTable", "DeleteRouteTable", "CreateRoute", "DeleteRoute",
        "ReplaceRoute", "AssociateRouteTable", "DisassociateRouteTable", "CreateNetworkInterface",
        "AttachNetworkInterface", "DetachNetworkInterface", "DeleteNetworkInterface", "CreateNetworkAcl",
        "CreateNetworkAclEntry", "CreateVpcPeeringConnection", "CreateVpcEndpoint",
        "ModifySubnetAttribute", "AssignPrivateIpAddresses", "AssociateVpcCidrBlock", "CreateFlowLogs"),
    "images of your own beyond CreateImage, RegisterImage and DeregisterImage": (
        "CopyImage", "ImportImage", "ModifyImageAttribute"),
}

NEVER = {
    "spot instances (every instance is on demand)": (
        "RequestSpotInstances", "RequestSpotFleet", "CancelSpotInstanceRequests", "CreateFleet"),
    "placement groups (one host)": ("CreatePlacementGroup", "DeletePlacementGroup"),
    "encryption of volumes (a volume is a file on this host)": ("EnableEbsEncryptionByDefault",),
    "IAM, so no instance profiles": (
        "AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation"),
}


def _refuse(reason: str, later: bool):
    @mutating  # never a DryRunOperation: the request could not succeed
    def refuse(cloud, caller, p) -> dict:
        when = "is not available yet: it comes with" if later else "is not supported: pocketcloud has no"
        raise InvalidParameter(f"{p.get('Action')} {when} {reason}", code="UnsupportedOperation")

    refuse.refuses = True  # not listed among the actions pocketcloud implements
    return refuse


ACTIONS = {action: _refuse(reason, later) for table, later in ((LATER, True), (NEVER, False))
           for reason, actions in table.items() for action in actions}
