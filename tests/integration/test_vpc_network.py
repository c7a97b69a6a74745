"""VPC networking phase 2, step 1: a real server with POCKETCLOUD_VPC_NETWORKING=on makes its
records real - a bridge and a Docker network per subnet, the cloud's nftables tables - applies
every security-group change, outlives its own process, and repairs the kernel at restart.
boto3 against `pocketcloud serve`; the kernel is read with `ip -j` and `nft -j`."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from emulator.config import Config
from emulator.networks import bridges
from emulator.networks.model import bridge_name

from .test_ec2 import ec2_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def netcloud(tmp_path_factory, docker_client):
    from tests.conftest import start_server, stop_and_check_leaks

    srv = start_server(tmp_path_factory.mktemp("pcnet"), POCKETCLOUD_VPC_NETWORKING="on")
    srv.label = Config(home=srv.home).instance_label
    yield srv
    stop_and_check_leaks(srv, docker_client)  # includes the cloud's bridges, networks and tables


def nft_table(label: str, family: str = "inet") -> dict | None:
    """{'sets': {name: elements}, 'counters': set of names} of the cloud's table, None when absent."""
    proc = subprocess.run(["nft", "-j", "list", "table", family, f"pc-{label}"], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    out: dict = {"sets": {}, "counters": set()}
    for obj in json.loads(proc.stdout)["nftables"]:
        if "set" in obj or "map" in obj:
            s = obj.get("set") or obj.get("map")
            out["sets"][s["name"]] = s.get("elem", [])
        elif "counter" in obj:
            out["counters"].add(obj["counter"]["name"])
    return out


def addresses(dev: str) -> set[str]:
    got = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", dev], capture_output=True,
                                    text=True, check=True).stdout)
    return {f"{a['local']}/{a['prefixlen']}" for li in got for a in li["addr_info"]}


def until(check, timeout: float = 10.0):
    """The reconcile pass runs every 5 s: wait for it rather than for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_default_subnets_are_bridges_with_docker_networks(netcloud, docker_client):
    ec2 = ec2_for(netcloud, netcloud.new_user("net-a"))
    subnets = ec2.describe_subnets()["Subnets"]
    assert len(subnets) == 3
    ours = {b["subnet"]: b["name"] for b in bridges.list_bridges(netcloud.label)}
    for s in subnets:
        name = bridge_name(s["SubnetId"])
        assert ours.get(s["SubnetId"]) == name, f"no bridge for {s['SubnetId']}"
        prefix = s["CidrBlock"].split("/")[1]
        base = s["CidrBlock"].split("/")[0].rsplit(".", 1)
        assert addresses(name) == {f"{base[0]}.{int(base[1]) + 1}/{prefix}"}, "the gateway is the subnet's base + 1"
        nets = docker_client.networks.list(names=[f"pc-{netcloud.label}-{s['SubnetId']}"])
        assert len(nets) == 1 and nets[0].attrs["Options"]["com.docker.network.bridge.name"] == name
        assert nets[0].attrs["IPAM"]["Config"][0]["Subnet"] == s["CidrBlock"]
    table = nft_table(netcloud.label)
    assert table is not None and nft_table(netcloud.label, "bridge") is not None
    assert {bridge_name(s["SubnetId"]) for s in subnets} <= set(table["sets"]["bridges"])
    assert f"inmap-{subnets[0]['VpcId']}" in table["sets"]


def test_group_changes_reach_the_kernel_at_once(netcloud):
    ec2 = ec2_for(netcloud, netcloud.new_user("net-b"))
    gid = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    assert f"members-{gid}" in nft_table(netcloud.label)["sets"], "a new group is in the table when the call returns"
    ec2.delete_security_group(GroupId=gid)
    assert f"members-{gid}" not in nft_table(netcloud.label)["sets"], "a deleted group is gone when the call returns"


def test_networks_outlive_the_server_and_restart_repairs_them(netcloud):
    ec2 = ec2_for(netcloud, netcloud.new_user("net-c"))
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    netcloud.stop()
    try:
        assert subnet in {b["subnet"] for b in bridges.list_bridges(netcloud.label)}, "bridges outlive the server"
        assert nft_table(netcloud.label) is not None, "and so do the rules"
        # While the server is down: its table is deleted by hand and one bridge goes too.
        subprocess.run(["nft", "delete", "table", "inet", f"pc-{netcloud.label}"], check=True)
        subprocess.run(["ip", "link", "del", "dev", bridge_name(subnet)], check=True)
    finally:
        netcloud.start()
    table = until(lambda: nft_table(netcloud.label))
    assert table is not None and f"inmap-{vpc}" in table["sets"], "the table is back after the restart"
    assert until(lambda: subnet in {b["subnet"] for b in bridges.list_bridges(netcloud.label)}), "the bridge too"


def test_a_stale_bridge_of_this_cloud_is_removed_and_others_are_left_alone(netcloud):
    # A bridge this cloud made for a subnet its records no longer hold (the record deleted while
    # the server was down), and a bridge of another program with a name in the same space.
    stale_id = "subnet-0123456789abcdef0"
    stale, foreign = bridge_name(stale_id), "pcb-ffffffffff0"
    subprocess.run(["ip", "link", "add", "name", stale, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", "dev", stale, "alias", f"pocketcloud {netcloud.label} {stale_id}"], check=True)
    subprocess.run(["ip", "link", "add", "name", foreign, "type", "bridge"], check=True)
    try:
        # Any change applies the whole picture (the reconcile pass does the same, on its own clock).
        ec2_for(netcloud, netcloud.new_user("net-d")).create_security_group(GroupName="x", Description="x")
        assert stale not in {b["name"] for b in bridges.list_bridges(netcloud.label)}, \
            "this cloud's stale bridge is removed"
        assert subprocess.run(["ip", "link", "show", "dev", foreign], capture_output=True).returncode == 0, \
            "a bridge without this cloud's alias is never touched"
    finally:
        subprocess.run(["ip", "link", "del", "dev", foreign], check=False)
        subprocess.run(["ip", "link", "del", "dev", stale], check=False, capture_output=True)
