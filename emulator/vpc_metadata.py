"""What 169.254.169.254 answers an instance: its record, found by its source address.

The networking library's MetadataApp (emulator/networks/imds.py) serves IMDSv1/v2 and asks a
`lookup(ip)` for the caller's metadata; this is that lookup over the state database. The
address is trustworthy because the bridge rules pin every interface to its address, and it
is unique in the cloud because every VPC's block is distinct on the host. Only an instance on
a subnet (VPC networking on) is answered; anything else gets 404.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable

from .errors import CloudError
from .launch_templates import ami_id
from .state import Store

LIVE = ("pending", "running", "stopping")


def lookup(store: Store, region: str, public_key: Callable[[str, str], str | None]) -> Callable[[str], dict | None]:
    """lookup(ip) for MetadataApp; public_key(owner, key_name) gives an instance's key, or None."""

    def find(ip: str) -> dict[str, Any] | None:
        r = store.one(
            "SELECT i.*, n.id AS eni, n.mac, n.subnet_id, s.cidr AS subnet_cidr, s.vpc_id, s.zone_suffix,"
            " v.cidr AS vpc_cidr FROM instances i JOIN network_interfaces n ON n.instance_id = i.id"
            " JOIN subnets s ON s.id = n.subnet_id JOIN vpcs v ON v.id = s.vpc_id"
            f" WHERE i.private_ip=? AND i.state IN ({','.join('?' * len(LIVE))})"
            " AND json_extract(i.details, '$.net.subnet_id') = n.subnet_id", (ip, *LIVE))
        if r is None:
            return None
        details = json.loads(r["details"] or "{}")
        group_ids = details.get("security_groups", [])
        names = {g["id"]: g["name"] for g in store.query(
            f"SELECT id, name FROM security_groups WHERE id IN ({','.join('?' * len(group_ids))})", tuple(group_ids))} \
            if group_ids else {}
        key = public_key(r["owner"], r["key_name"]) if r["key_name"] else None
        return {
            "instance_id": r["id"], "ami_id": ami_id(r["image"], r["kind"]), "instance_type": r["type"],
            "local_ipv4": ip, "hostname": "ip-" + ip.replace(".", "-"), "region": region,
            "availability_zone": region + r["zone_suffix"], "account_id": r["owner"],
            "security_groups": [names.get(g, g) for g in group_ids], "security_group_ids": group_ids,
            "public_keys": {r["key_name"]: key} if key else {}, "user_data": r["user_data"] or "",
            "mac": r["mac"], "interface_id": r["eni"], "subnet_id": r["subnet_id"], "subnet_cidr": r["subnet_cidr"],
            "vpc_id": r["vpc_id"], "vpc_cidr": r["vpc_cidr"],
            "launch_time": datetime.fromtimestamp(r["created_at"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "http_tokens": "optional", "http_endpoint": "enabled",
        }

    return find


def key_lookup(keypairs) -> Callable[[str, str], str | None]:
    def public_key(owner: str, name: str) -> str | None:
        try:
            return keypairs.get(owner, name).public_key
        except CloudError:  # deleted since the launch: the instance keeps it on AWS; we no longer know it
            return None

    return public_key
