"""`pocketcloud vpcs` and `pocketcloud subnets`: VPCs and subnets (REST /vpcs, /subnets)."""
from __future__ import annotations

import click

from .context import HelpGroup, client_of
from .output import emit, note

VPC_COLUMNS = ["id", "cidr", "default"]
SUBNET_COLUMNS = ["id", "vpc", "cidr", "zone", "default", "available_ips", "bridge"]


@click.group(cls=HelpGroup)
def vpcs():
    """VPCs: private address blocks, each distinct on this host (your default VPC is made for you)."""


@vpcs.command("ls")
@click.pass_context
def vpcs_ls(ctx):
    """List your VPCs."""
    emit(ctx, client_of(ctx).call("GET", "/vpcs"), VPC_COLUMNS, key="vpcs")


@vpcs.command("create")
@click.argument("cidr")
@click.pass_context
def vpcs_create(ctx, cidr):
    """Create a VPC of block CIDR (a private /16-/28 nothing else on this host uses)."""
    vpc = client_of(ctx).call("POST", "/vpcs", json={"cidr": cidr})
    emit(ctx, vpc, VPC_COLUMNS)
    note(ctx, f"next: pocketcloud subnets create {vpc['id']} CIDR")


@vpcs.command("rm")
@click.argument("vpc_id")
@click.pass_context
def vpcs_rm(ctx, vpc_id):
    """Delete a VPC (its subnets first)."""
    client_of(ctx).call("DELETE", f"/vpcs/{vpc_id}")
    note(ctx, f"deleted {vpc_id}")


@click.group(cls=HelpGroup)
def subnets():
    """Subnets: one network (a bridge on this host) inside a VPC, in one availability zone."""


@subnets.command("ls")
@click.option("--vpc", help="only this VPC's")
@click.pass_context
def subnets_ls(ctx, vpc):
    """List your subnets."""
    emit(ctx, client_of(ctx).call("GET", "/subnets", params={"vpc": vpc} if vpc else None), SUBNET_COLUMNS,
         key="subnets")


@subnets.command("create")
@click.argument("vpc_id")
@click.argument("cidr")
@click.option("--zone", help="a zone letter (a, b, c) or name; default a")
@click.pass_context
def subnets_create(ctx, vpc_id, cidr, zone):
    """Create a subnet of block CIDR inside VPC_ID."""
    body = {"vpc": vpc_id, "cidr": cidr, **({"zone": zone} if zone else {})}
    emit(ctx, client_of(ctx).call("POST", "/subnets", json=body), SUBNET_COLUMNS)


@subnets.command("rm")
@click.argument("subnet_id")
@click.pass_context
def subnets_rm(ctx, subnet_id):
    """Delete a subnet (its instances terminated first)."""
    client_of(ctx).call("DELETE", f"/subnets/{subnet_id}")
    note(ctx, f"deleted {subnet_id}")
