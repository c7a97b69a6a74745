"""VPC networking phase 2, step 1: a real server with POCKETCLOUD_VPC_NETWORKING=on makes its
records real - a bridge and a Docker network per subnet, the cloud's nftables tables - applies
every security-group change, outlives its own process, and repairs the kernel at restart.
boto3 against `pocketcloud serve`; the kernel is read with `ip -j` and `nft -j`."""
from __future__ import annotations

import contextlib
import json
import subprocess
import time

import pytest

from emulator.config import Config
from emulator.networks import bridges
from emulator.networks.model import bridge_name
from tests.conftest import ARTIFACTS

from .test_ec2 import aws, ec2_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def netcloud(tmp_path_factory, docker_client):
    from tests.conftest import start_server, stop_and_check_leaks

    srv = start_server(tmp_path_factory.mktemp("pcnet"), POCKETCLOUD_VPC_NETWORKING="on")
    srv.label = Config(home=srv.home).instance_label
    yield srv
    write_matrix()
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


def code_of(call) -> str:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        call()
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500, e.value.response
    return e.value.response["Error"]["Code"]


def prefixes(elems: list) -> set[str]:
    return {f"{e['prefix']['addr']}/{e['prefix']['len']}" if isinstance(e, dict) and "prefix" in e else str(e)
            for e in elems}


def host_state(label: str, docker_client) -> tuple:
    """Everything of the cloud's networks on the host, to compare before and after a refusal."""
    table = nft_table(label)
    return (sorted(b["name"] for b in bridges.list_bridges(label)),
            sorted(n.name for n in docker_client.networks.list(filters={"label": f"pocketcloud.cloud={label}"})),
            sorted(table["sets"]) if table else None)


def test_create_and_delete_vpcs_and_subnets_make_and_remove_real_networks(netcloud, docker_client):
    a_api = netcloud.new_user("net-e")
    a = ec2_for(netcloud, a_api)
    b = ec2_for(netcloud, netcloud.new_user("net-f"))
    taken = {v["CidrBlock"] for v in b.describe_vpcs()["Vpcs"]}
    vpc = a.create_vpc(CidrBlock="10.250.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}])["Vpc"]
    assert (vpc["CidrBlock"], vpc["IsDefault"], vpc["Tags"]) == ("10.250.0.0/16", False, [{"Key": "Name", "Value": "lab"}])
    sub = a.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.250.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    assert (sub["CidrBlock"], sub["AvailabilityZone"], sub["AvailableIpAddressCount"]) == ("10.250.1.0/24", "us-east-1b", 251)
    name = bridge_name(sub["SubnetId"])
    assert addresses(name) == {"10.250.1.1/24"}, "the subnet is a bridge when CreateSubnet answers"
    assert docker_client.networks.list(names=[f"pc-{netcloud.label}-{sub['SubnetId']}"])
    assert f"inmap-{vpc['VpcId']}" in nft_table(netcloud.label)["sets"]
    assert "10.250.0.0/16" in prefixes(nft_table(netcloud.label)["sets"]["vpc_cidrs"])
    # The VPC's own default group, found as the Terraform provider finds aws_vpc's
    # default_security_group_id, with AWS's two rules (the aws CLI shows them by rule id).
    [sg] = a.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]},
                                               {"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    assert f"members-{sg['GroupId']}" in nft_table(netcloud.label)["sets"]
    out = aws(netcloud, a_api, "ec2", "describe-security-group-rules", "--filters",
              f"Name=group-id,Values={sg['GroupId']}", "--output", "json")
    assert out.returncode == 0, out.stderr
    got = {(r["IsEgress"], r["IpProtocol"], r.get("CidrIpv4"), r.get("ReferencedGroupInfo", {}).get("GroupId"))
           for r in json.loads(out.stdout)["SecurityGroupRules"]}
    assert got == {(False, "-1", None, sg["GroupId"]), (True, "-1", "0.0.0.0/0", None)}

    before = host_state(netcloud.label, docker_client)
    refusals = [
        (lambda: a.create_vpc(CidrBlock="10.250.128.0/17"), "InvalidVpc.Range"),  # overlaps its own VPC
        (lambda: b.create_vpc(CidrBlock="10.250.0.0/16"), "InvalidVpc.Range"),  # another account's VPC
        (lambda: a.create_vpc(CidrBlock=next(iter(taken))), "InvalidVpc.Range"),  # another account's default VPC
        (lambda: a.create_vpc(CidrBlock="127.0.0.0/16"), "InvalidVpc.Range"),
        (lambda: a.create_vpc(CidrBlock="not a cidr"), "InvalidParameterValue"),
        (lambda: a.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.250.1.128/25"), "InvalidSubnet.Conflict"),
        (lambda: a.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.251.0.0/24"), "InvalidSubnet.Range"),
        (lambda: b.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.250.2.0/24"), "InvalidVpcID.NotFound"),
        (lambda: b.delete_subnet(SubnetId=sub["SubnetId"]), "InvalidSubnetID.NotFound"),
        (lambda: b.delete_vpc(VpcId=vpc["VpcId"]), "InvalidVpcID.NotFound"),
        (lambda: a.delete_vpc(VpcId=vpc["VpcId"]), "DependencyViolation"),  # it has a subnet
        (lambda: a.delete_vpc(VpcId="vpc-nothex"), "InvalidVpcID.Malformed"),
        (lambda: a.delete_security_group(GroupId=sg["GroupId"]), "CannotDelete"),  # only with its VPC
        (lambda: b.delete_security_group(GroupId=sg["GroupId"]), "InvalidGroup.NotFound"),
        (lambda: b.revoke_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=[
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": sg["GroupId"]}]}]), "InvalidGroup.NotFound"),
        (lambda: a.revoke_security_group_ingress(GroupId=sg["GroupId"], IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]),
         "InvalidPermission.NotFound"),
    ]
    for call, want in refusals:
        assert code_of(call) == want
    assert host_state(netcloud.label, docker_client) == before, "a refusal changes nothing on the host"

    # Something the cloud did not put there is attached to the bridge: the subnet stays.
    subprocess.run(["ip", "link", "add", "pcx-intruder", "type", "veth", "peer", "name", "pcx-intruder1"], check=True)
    try:
        subprocess.run(["ip", "link", "set", "pcx-intruder", "master", name], check=True)
        assert code_of(lambda: a.delete_subnet(SubnetId=sub["SubnetId"])) == "DependencyViolation"
        assert sub["SubnetId"] in {s["SubnetId"] for s in a.describe_subnets()["Subnets"]}
    finally:
        subprocess.run(["ip", "link", "del", "pcx-intruder"], check=False)

    a.delete_subnet(SubnetId=sub["SubnetId"])
    assert subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0, "the bridge is gone"
    assert not docker_client.networks.list(names=[f"pc-{netcloud.label}-{sub['SubnetId']}"])
    a.delete_vpc(VpcId=vpc["VpcId"])
    assert f"inmap-{vpc['VpcId']}" not in nft_table(netcloud.label)["sets"]
    assert f"members-{sg['GroupId']}" not in nft_table(netcloud.label)["sets"], "its default group went with it"
    assert code_of(lambda: a.describe_security_groups(GroupIds=[sg["GroupId"]])) == "InvalidGroup.NotFound"
    assert vpc["VpcId"] not in {v["VpcId"] for v in a.describe_vpcs()["Vpcs"]}


def test_vpcs_and_subnets_over_rest_and_the_cli(netcloud):
    api = netcloud.new_user("net-g")
    made = api.ok("POST", "/vpcs", 201, json={"cidr": "10.249.0.0/24"})
    sub = api.ok("POST", "/subnets", 201, json={"vpc": made["id"], "cidr": "10.249.0.0/28", "zone": "c"})
    assert (sub["zone"], sub["bridge"], sub["available_ips"]) == ("us-east-1c", bridge_name(sub["id"]), 11)
    assert addresses(sub["bridge"]) == {"10.249.0.1/28"}
    status, body = api("POST", "/vpcs", json={"cidr": "10.249.0.0/25"})
    assert (status, body["error"]["code"]) == (400, "InvalidVpc.Range")
    status, body = api("POST", "/subnets", json={"vpc": made["id"]})
    assert (status, body["error"]["code"]) == (400, "MissingParameter")
    assert api("DELETE", f"/vpcs/{made['id']}")[0] == 409
    assert [s["id"] for s in api.ok("GET", "/subnets", params={"vpc": made["id"]})["subnets"]] == [sub["id"]]
    api.ok("DELETE", f"/subnets/{sub['id']}", 204)
    api.ok("DELETE", f"/vpcs/{made['id']}", 204)
    # The CLI (as the admin): create, list, remove.
    out = json.loads(netcloud.cli("-o", "json", "vpcs", "create", "10.249.4.0/24").stdout)
    s = json.loads(netcloud.cli("-o", "json", "subnets", "create", out["id"], "10.249.4.0/26").stdout)
    listed = netcloud.cli("subnets", "ls", "--vpc", out["id"]).stdout
    assert s["id"] in listed and "10.249.4.0/26" in listed
    bad = netcloud.cli("vpcs", "rm", out["id"], check=False)
    assert bad.returncode != 0 and "DependencyViolation" in bad.stderr + bad.stdout
    netcloud.cli("subnets", "rm", s["id"])
    netcloud.cli("vpcs", "rm", out["id"])
    assert out["id"] not in netcloud.cli("vpcs", "ls").stdout


def sh(api, iid: str, script: str) -> dict:
    return api.ok("POST", f"/instances/{iid}/exec", json={"command": script, "timeout": 20})


MATRIX: list[tuple] = []  # (from, to, port, rule, expected, observed): artifacts/vpc-matrix.md


def flow(api, src: str, ip: str, expect: bool, frm: str, to: str, rule: str, port: int = 8080) -> None:
    """One cell of the connectivity matrix: measured, recorded, then checked."""
    got = reaches(api, src, ip, port)
    MATRIX.append((frm, to, port, rule, "open" if expect else "closed", "open" if got else "closed"))
    assert got == expect, f"{frm} -> {to}:{port} ({rule}): {'open' if got else 'closed'}"


def write_matrix() -> None:
    if not MATRIX:
        return
    lines = ["| from | to | port | rule | expected | observed |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(str(c) for c in row)} |" for row in MATRIX]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "vpc-matrix.md").write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def host_http_service():
    """An HTTP server of the host's on 0.0.0.0 (a free port), answering /hostname, while in use."""
    import http.server
    import threading

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"host\n")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def reaches(api, src: str, ip: str, port: int = 8080) -> bool:
    # busybox wget: no -T in tiny (it segfaults); `timeout` bounds it instead.
    out = sh(api, src, f"timeout 3 wget -q -O - http://{ip}:{port}/hostname")
    return out["exit_code"] == 0


def test_containers_join_their_subnet_and_groups_decide_what_flows(netcloud):
    from .test_ec2 import tiny_ami

    api = netcloud.new_user("net-h")
    ec2 = ec2_for(netcloud, api)
    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"][0]
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    lonely = ec2.create_security_group(GroupName="lonely", Description="no ingress")["GroupId"]
    ami = tiny_ami(ec2)
    run = lambda sg: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"],  # noqa: E731
                                       SecurityGroupIds=[sg])["Instances"][0]["InstanceId"]
    # A through REST, which names no group: it goes to the first zone's default subnet (this one)
    # in its VPC's default group, as EC2 launches without SecurityGroupIds do.
    a = api.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})["id"]
    b, c = run(default), run(lonely)
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[a, b, c], WaiterConfig={"Delay": 1})
        insts = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=[a, b, c])["Reservations"]
                 for i in r["Instances"]}
        assert [g["GroupId"] for g in insts[a]["SecurityGroups"]] == [default], "REST: the VPC's default group"
        assert insts[a]["SubnetId"] == subnet["SubnetId"]
        ip = {k: v["PrivateIpAddress"] for k, v in insts.items()}
        import ipaddress as ipa

        assert all(ipa.ip_address(x) in ipa.ip_network(subnet["CidrBlock"]) for x in ip.values()), ip
        assert len(set(ip.values())) == 3
        enis = {i["InstanceId"]: i["NetworkInterfaces"][0]["MacAddress"] for i in insts.values()}
        assert sh(api, a, "cat /sys/class/net/eth0/address")["stdout"].strip() == enis[a], "the ENI's MAC"
        name = bridge_name(subnet["SubnetId"])
        assert len(bridges.ports(name)) >= 3, "three veths on the subnet's bridge"
        for x in (b, c):
            sh(api, x, "busybox httpd -p 8080 -h /etc")
        gateway = f"{subnet['CidrBlock'].split('/')[0][:-1]}1"
        assert sh(api, a, f"ping -c 1 -W 2 {gateway}")["exit_code"] == 0, "gateway"
        # A host service on every address (as sshd or a database may be) is not the instances' to reach.
        with host_http_service() as port:
            flow(api, a, gateway, False, "container A", "host service on 0.0.0.0, via the gateway",
                 "host input chain: DHCP, ping, metadata only", port=port)
        flow(api, a, ip[b], True, "container A (default)", "container B (default)", "default: all from itself")
        # ... through its self rule, an ordinary rule: shown, revoked (members stop reaching each
        # other when the call answers: no wait), refused when gone, authorized again.
        [perm] = ec2.describe_security_groups(GroupIds=[default])["SecurityGroups"][0]["IpPermissions"]
        assert (perm["IpProtocol"], [p["GroupId"] for p in perm["UserIdGroupPairs"]], perm["IpRanges"]) == \
            ("-1", [default], [])
        itself = [{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": default}]}]
        ec2.revoke_security_group_ingress(GroupId=default, IpPermissions=itself)
        flow(api, a, ip[b], False, "container A (default)", "container B (default)",
             "default: its self rule revoked (checked as the call answers)")
        assert code_of(lambda: ec2.revoke_security_group_ingress(GroupId=default, IpPermissions=itself)) == \
            "InvalidPermission.NotFound"
        ec2.authorize_security_group_ingress(GroupId=default, IpPermissions=itself)
        flow(api, a, ip[b], True, "container A (default)", "container B (default)", "default: self rule authorized again")
        path = api.ok("GET", f"/instances/{b}/internals")["vpc_path"]
        assert path["interface"] in bridges.ports(name) and path["bridge"] == name and path["ip"] == ip[b]
        admitted = [r for g in path["groups"] for r in g["rules"] if r["direction"] == "ingress"]
        assert admitted and admitted[0]["packets"] > 0, "the live counter of the rule that let A in"
        flow(api, a, ip[c], False, "container A (default)", "container C (lonely)", "lonely: no ingress rule")
        flow(api, c, ip[b], False, "container C (lonely)", "container B (default)", "default: only its members")
        assert api.ok("GET", f"/instances/{b}/internals")["vpc_path"]["dropped"]["ingress"]["packets"] > 0
        # Authorize, then measure how long until traffic flows (the closing note's figure).
        t0 = time.monotonic()
        ec2.authorize_security_group_ingress(GroupId=lonely, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": subnet["CidrBlock"]}]}])
        assert until(lambda: reaches(api, a, ip[c]), 10), "authorized: traffic flows without a restart"
        took = time.monotonic() - t0
        print(f"\nauthorize -> traffic flowing: {took:.2f} s (one exec round trip included)")
        flow(api, a, ip[c], True, "container A (default)", "container C (lonely)",
             f"lonely: + tcp 8080 from the subnet (flowing {took:.2f} s after the call)")
        # A restart gives the container a new host-side veth: the pinning follows it.
        before = bridges.ports(name)
        ec2.stop_instances(InstanceIds=[b])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[b], WaiterConfig={"Delay": 1})
        ec2.start_instances(InstanceIds=[b])
        ec2.get_waiter("instance_running").wait(InstanceIds=[b], WaiterConfig={"Delay": 1})
        assert bridges.ports(name) != before
        sh(api, b, "busybox httpd -p 8080 -h /etc")
        flow(api, a, ip[b], True, "container A (default)", "container B after a restart", "default; veth re-pinned")
        after = {i["InstanceId"]: i["PrivateIpAddress"] for r in ec2.describe_instances(InstanceIds=[b])["Reservations"]
                 for i in r["Instances"]}
        assert after[b] == ip[b], "the address is kept across a restart"
    finally:
        ec2.terminate_instances(InstanceIds=[a, b, c])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[a, b, c], WaiterConfig={"Delay": 1})


def test_forwards_are_kernel_rules_that_outlive_the_server(netcloud):
    import requests

    api = netcloud.new_user("net-i")
    ec2 = ec2_for(netcloud, api)
    from .test_ec2 import tiny_ami

    gid = ec2.create_security_group(GroupName="web", Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    iid = ec2.run_instances(ImageId=tiny_ami(ec2), MinCount=1, MaxCount=1,
                            SecurityGroupIds=[gid])["Instances"][0]["InstanceId"]
    try:
        api.wait_state(iid)
        sh(api, iid, "busybox httpd -p 8080 -h /etc; busybox httpd -p 8081 -h /etc")
        host = next(p["host"] for p in api.ok("GET", f"/instances/{iid}")["ports"] if p["guest"] == 8080)
        lo, hi = Config(home=netcloud.home).forward_ports
        assert lo <= host <= hi, "forwards come from the reserved range"
        url = f"http://127.0.0.1:{host}/hostname"
        assert until(lambda: requests.get(url, timeout=3).ok, 5)
        table = nft_table(netcloud.label)
        assert f"fwd-tcp-127-0-0-1-{host}" in table["counters"], "the forward is an nft DNAT rule with a counter"
        # A security-group rule's port gets a forward too, at once.
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 8081, "ToPort": 8081, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        group_host = next(p["host"] for p in api.ok("GET", f"/instances/{iid}")["ports"] if p["guest"] == 8081)
        assert requests.get(f"http://127.0.0.1:{group_host}/hostname", timeout=3).ok
        netcloud.stop()
        try:
            for port in (host, group_host):
                assert requests.get(f"http://127.0.0.1:{port}/hostname", timeout=3).ok, \
                    "the forward answers while the server is down"
        finally:
            netcloud.start()
        assert requests.get(url, timeout=3).ok, "and after it restarts"
    finally:
        api("DELETE", f"/instances/{iid}")
        api.wait_state(iid, "terminated")
    assert until(lambda: f"fwd-tcp-127-0-0-1-{host}" not in nft_table(netcloud.label)["counters"]), \
        "a terminated instance's forwards go"


def test_two_accounts_never_reach_each_other(netcloud):
    from .test_ec2 import tiny_ami

    sides = []
    for n in ("net-j", "net-k"):
        api = netcloud.new_user(n)
        ec2 = ec2_for(netcloud, api)
        open_gid = ec2.create_security_group(GroupName="open", Description="everything in")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=open_gid, IpPermissions=[{
            "IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        iid = ec2.run_instances(ImageId=tiny_ami(ec2), MinCount=1, MaxCount=1,
                                SecurityGroupIds=[open_gid])["Instances"][0]["InstanceId"]
        sides.append((api, ec2, iid))
    try:
        for api, ec2, iid in sides:
            ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
            sh(api, iid, "busybox httpd -p 8080 -h /etc")
        ip = [s[1].describe_instances(InstanceIds=[s[2]])["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
              for s in sides]
        (a_api, _, a), (b_api, _, b) = sides
        flow(a_api, a, ip[0], True, "account J container", "itself", "open: all from 0.0.0.0/0 (the check works)")
        flow(a_api, a, ip[1], False, "account J container", "account K container", "other VPC, K's group wide open")
        flow(b_api, b, ip[0], False, "account K container", "account J container", "other VPC, J's group wide open")
        assert sh(a_api, a, f"ping -c 1 -W 2 {ip[1]}")["exit_code"] != 0
    finally:
        for api, ec2, iid in sides:
            ec2.terminate_instances(InstanceIds=[iid])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})


def test_a_vm_and_a_container_share_a_subnet(netcloud):
    """Boots a `tiny` VM (TCG): its tap on the subnet's bridge, its address from the subnet's dnsmasq."""
    from emulator.networks import dhcp

    from .test_ec2 import tiny_ami

    api = netcloud.new_user("net-v")
    ec2 = ec2_for(netcloud, api)
    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"][0]
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    run = lambda kind: ec2.run_instances(  # noqa: E731
        ImageId=tiny_ami(ec2, kind), MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"],
        SecurityGroupIds=[default])["Instances"][0]["InstanceId"]
    vm, ct = run("vm"), run("container")
    dhcp_dir = netcloud.home / "net" / "dhcp"
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[vm, ct], WaiterConfig={"Delay": 2, "MaxAttempts": 200})
        ip = {i["InstanceId"]: i["PrivateIpAddress"] for r in ec2.describe_instances(InstanceIds=[vm, ct])["Reservations"]
              for i in r["Instances"]}
        assert subnet["SubnetId"] in dhcp.running(dhcp_dir), "the subnet's DHCP server runs while it has a VM"
        assert f"inet {ip[vm]}/" in sh(api, vm, "ip -4 addr show eth0")["stdout"], "the address from our DHCP"
        assert bridges.tap_name(vm) in bridges.ports(bridge_name(subnet["SubnetId"]))
        for x in (vm, ct):
            sh(api, x, "busybox httpd -p 8080 -h /etc")
        flow(api, ct, ip[vm], True, "container", "VM (same subnet)", "default: all from itself")
        flow(api, vm, ip[ct], True, "VM", "container (same subnet)", "default: all from itself")
        assert sh(api, ct, f"ping -c 1 -W 2 {ip[vm]}")["exit_code"] == 0
        md = sh(api, vm, "wget -q -O - http://169.254.169.254/latest/meta-data/instance-id")["stdout"].strip()
        assert md == vm, "the metadata service answers the VM about itself"
    finally:
        ec2.terminate_instances(InstanceIds=[vm, ct])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[vm, ct], WaiterConfig={"Delay": 1})
    assert until(lambda: subnet["SubnetId"] not in dhcp.running(dhcp_dir)), "no VM left: its DHCP server goes"


def status_line(api, src: str, ip: str, port: int, path: str = "/api/v1/health") -> str:
    """The first line of an HTTP answer from IP:PORT as instance SRC gets it ('' when none)."""
    out = sh(api, src, f"printf 'GET {path} HTTP/1.0\\r\\nHost: {ip}:{port}\\r\\n\\r\\n' | timeout 4 nc {ip} {port} "
                       "| head -n 1")
    return out["stdout"].strip()


def test_instances_reach_the_cloud_endpoint_on_their_gateway_and_nothing_else(netcloud):
    """The cloud's endpoint as seen from a VPC (like an S3 gateway endpoint): the API/S3 port on an
    instance's own gateway answers, DNATed to the server on 127.0.0.1. The console's port there,
    another host service there, and the API port on another subnet's gateway do not."""
    from .test_ec2 import tiny_ami

    api = netcloud.new_user("net-ep")
    ec2 = ec2_for(netcloud, api)
    mine, other = sorted(ec2.describe_subnets()["Subnets"], key=lambda s: s["AvailabilityZone"])[:2]
    gw = {s["SubnetId"]: f"{s['CidrBlock'].split('/')[0][:-1]}1" for s in (mine, other)}
    iid = ec2.run_instances(ImageId=tiny_ami(ec2), MinCount=1, MaxCount=1,
                            SubnetId=mine["SubnetId"])["Instances"][0]["InstanceId"]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
        here = gw[mine["SubnetId"]]
        assert sh(api, iid, "ip route | awk '/^default/{print $3}'")["stdout"].strip() == here
        got = sh(api, iid, f"timeout 5 wget -q -O - http://{here}:{netcloud.port}/api/v1/health")
        assert got["exit_code"] == 0 and json.loads(got["stdout"]) == {"status": "ok"}, got
        # S3 on the same port: an unsigned ListBuckets is S3's own AccessDenied, so S3 answered.
        line = status_line(api, iid, here, netcloud.port, "/")
        assert line.startswith("HTTP/1.") and line.split()[1] == "403", f"S3 answers too: {line}"
        MATRIX.append(("container", "its gateway", netcloud.port, "the cloud's endpoint", "open", "open"))
        with host_http_service() as port:
            closed = [(here, netcloud.console_port, "the console's port on its gateway"),
                      (here, port, "a host service on 0.0.0.0, on its gateway"),
                      (gw[other["SubnetId"]], netcloud.port, "the API port on another subnet's gateway")]
            for ip, p, what in closed:
                line = status_line(api, iid, ip, p)
                MATRIX.append(("container", what, p, "host input chain", "closed", "open" if line else "closed"))
                assert line == "", f"{what}: {line}"
        counter = json.loads(subprocess.run(["nft", "-j", "list", "counter", "inet", f"pc-{netcloud.label}", "endpoint"],
                                            capture_output=True, text=True, check=True).stdout)
        assert next(o["counter"]["packets"] for o in counter["nftables"] if "counter" in o) > 0
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})


def test_the_metadata_service_answers_each_instance_about_itself(netcloud):
    from .test_ec2 import tiny_ami

    api = netcloud.new_user("net-m")
    ec2 = ec2_for(netcloud, api)
    ec2.import_key_pair(KeyName="k", PublicKeyMaterial=b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx1m4Hc0dZ6b0jmjk8m1m7HbqV5m7TnPZ8YQq3M0Xq7 t@x")
    iids = [i["InstanceId"] for i in ec2.run_instances(ImageId=tiny_ami(ec2), MinCount=2, MaxCount=2, KeyName="k",
                                                        UserData="hello from user data")["Instances"]]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=iids, WaiterConfig={"Delay": 1})
        base = "http://169.254.169.254/latest"
        for iid in iids:
            got = sh(api, iid, f"wget -q -O - {base}/meta-data/instance-id")
            assert got["stdout"].strip() == iid, got
        one = iids[0]
        ip = ec2.describe_instances(InstanceIds=[one])["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
        assert sh(api, one, f"wget -q -O - {base}/meta-data/local-ipv4")["stdout"].strip() == ip
        assert sh(api, one, f"wget -q -O - {base}/user-data")["stdout"] == "hello from user data"
        assert "ssh-ed25519" in sh(api, one, f"wget -q -O - {base}/meta-data/public-keys/0/openssh-key")["stdout"]
        # IMDSv2: a token from PUT (busybox wget cannot PUT: nc), then a GET that carries it.
        token = sh(api, one, "printf 'PUT /latest/api/token HTTP/1.0\\r\\nX-aws-ec2-metadata-token-ttl-seconds: 60"
                             "\\r\\n\\r\\n' | timeout 5 nc 169.254.169.254 80 | tail -n 1")["stdout"].strip()
        assert len(token) > 20, token
        doc = sh(api, one, f"wget -q -O - --header 'X-aws-ec2-metadata-token: {token}' "
                           f"{base}/dynamic/instance-identity/document")["stdout"]
        assert json.loads(doc)["instanceId"] == one and json.loads(doc)["privateIp"] == ip
        bad = sh(api, one, f"wget -q -O - --header 'X-aws-ec2-metadata-token: x{token}' {base}/meta-data/instance-id")
        assert bad["exit_code"] != 0, "a forged token is refused"
    finally:
        ec2.terminate_instances(InstanceIds=iids)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=iids, WaiterConfig={"Delay": 1})


# Docker's default capabilities: NET_RAW, not NET_ADMIN (what a process in a container has).
DOCKER_CAPS = ("chown", "dac_override", "fsetid", "fowner", "mknod", "net_raw", "setgid", "setuid", "setfcap",
               "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write")


def in_netns(docker_client, iid: str, *args: str) -> list[str]:
    """argv running spoof_frames.py in an instance's network namespace with Docker's default
    capabilities (the tiny image has no tool that forges with NET_RAW alone: see that script)."""
    from pathlib import Path
    import sys

    pid = docker_client.containers.get(f"pc-{iid}").attrs["State"]["Pid"]
    return ["nsenter", "-t", str(pid), "-n", "setpriv", "--bounding-set", "-all," + ",".join(f"+{c}" for c in DOCKER_CAPS),
            "--", sys.executable, "-I", str(Path(__file__).with_name("spoof_frames.py")), *args]


def forge(docker_client, iid: str, *args) -> int:
    out = subprocess.run(in_netns(docker_client, iid, *map(str, args)), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def spoofed(label: str) -> int:
    """Packets the bridge table's pinning dropped so far."""
    got = json.loads(subprocess.run(["nft", "-j", "list", "counter", "bridge", f"pc-{label}", "spoofed"],
                                    capture_output=True, text=True, check=True).stdout)
    return next(o["counter"]["packets"] for o in got["nftables"] if "counter" in o)


def test_an_instance_cannot_pass_as_another(netcloud, docker_client):
    """From container A, pass as container B (same VPC, same default group, so only the pinning
    stands in the way): UDP to C with B's address (A's MAC, then B's MAC too), ARP saying B's
    address is at A's MAC, a SYN to the metadata service from B's address. None reaches C, the
    host or the metadata service; the bridge's `spoofed` counter shows the rule did it; A as
    itself gets through. Also: a launch into a VPC of one's own naming no group gets that VPC's
    default group."""
    from .test_ec2 import tiny_ami

    api = netcloud.new_user("net-s")
    ec2 = ec2_for(netcloud, api)
    vpc = ec2.create_vpc(CidrBlock="10.248.0.0/24")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.248.0.0/26")["Subnet"]["SubnetId"]
    [default] = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]},
                                                      {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    iids = [i["InstanceId"] for i in ec2.run_instances(ImageId=tiny_ami(ec2), MinCount=3, MaxCount=3,
                                                        SubnetId=sub)["Instances"]]
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=iids, WaiterConfig={"Delay": 1})
        insts = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=iids)["Reservations"]
                 for i in r["Instances"]}
        assert all([g["GroupId"] for g in i["SecurityGroups"]] == [default["GroupId"]] for i in insts.values()), \
            "no SecurityGroupIds: the VPC's own default group"
        ip = {k: v["PrivateIpAddress"] for k, v in insts.items()}
        mac = {k: v["NetworkInterfaces"][0]["MacAddress"] for k, v in insts.items()}
        a, b, c = iids
        bridge = bridge_name(sub)
        with open(f"/sys/class/net/{bridge}/address") as f:
            gateway_mac = f.read().strip()
        no_admin = subprocess.run(in_netns(docker_client, a)[:-3] + ["ip", "link", "set", "eth0", "mtu", "1400"],
                                  capture_output=True, text=True)
        assert no_admin.returncode != 0, "the attacker has no NET_ADMIN, as in a container"
        sh(api, b, "busybox httpd -p 8080 -h /etc")
        assert reaches(api, c, ip[b]), "before: C reaches B"
        listener = subprocess.Popen(in_netns(docker_client, c, "listen", "9999", "6"), stdout=subprocess.PIPE, text=True)
        try:
            assert listener.stdout.readline().strip() == "ready"
            before = spoofed(netcloud.label)
            sent = forge(docker_client, a, "udp", mac[a], mac[c], ip[b], ip[c], 9999, "forged-address")
            sent += forge(docker_client, a, "udp", mac[b], mac[c], ip[b], ip[c], 9999, "forged-mac-and-address")
            sent += forge(docker_client, a, "arp", mac[a], ip[b])
            sent += forge(docker_client, a, "syn", mac[a], gateway_mac, ip[b], "169.254.169.254", 80)
            forge(docker_client, a, "udp", mac[a], mac[c], ip[a], ip[c], 9999, "as-itself")
            got = listener.communicate(timeout=20)[0]
        finally:
            listener.kill()
        for frm, text, rule in (("container A as itself", "as-itself", "default: all from itself"),
                                ("container A with B's address", "forged-address", "bridge pinning"),
                                ("container A with B's MAC and address", "forged-mac-and-address", "bridge pinning")):
            MATRIX.append((frm, "container C", "udp 9999", rule, "open" if text == "as-itself" else "closed",
                           "open" if f" {text}\n" in got else "closed"))
        assert f"{ip[a]} as-itself" in got, got
        assert "forged" not in got, f"a forged packet reached C: {got}"
        dropped = spoofed(netcloud.label) - before
        assert dropped >= sent, f"the pinning dropped {dropped} of {sent} forged frames"
        print(f"\nspoofing: {sent} forged frames, {dropped} dropped by the bridge pinning")
        neigh = json.loads(subprocess.run(["ip", "-j", "neigh", "show", ip[b], "dev", bridge], capture_output=True,
                                          text=True, check=True).stdout)
        assert all(n.get("lladdr") != mac[a] for n in neigh), "the host did not learn B's address at A's MAC"
        c_neigh = [li for li in sh(api, c, "ip neigh show")["stdout"].splitlines() if li.startswith(f"{ip[b]} ")]
        assert not any(mac[a] in li for li in c_neigh), f"nor did C: {c_neigh}"
        assert reaches(api, c, ip[b]), "B keeps its address and MAC: the forged frames taught the bridge nothing"
        md = sh(api, a, f"wget -q -O - --header 'X-Forwarded-For: {ip[b]}' "
                        "http://169.254.169.254/latest/meta-data/instance-id")["stdout"].strip()
        assert md == a, "the metadata service answers A about A, whatever A claims"
    finally:
        ec2.terminate_instances(InstanceIds=iids)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=iids, WaiterConfig={"Delay": 1})
    assert until(lambda: not bridges.ports(bridge_name(sub))), "the instances' veths are gone"
    ec2.delete_subnet(SubnetId=sub)
    ec2.delete_vpc(VpcId=vpc)


def test_kill_9_in_create_vpc_and_create_subnet_leaves_nothing_half_made(netcloud, docker_client):
    import requests

    from .test_crash_storage import die_during

    api = netcloud.new_user("net-crash")
    ec2 = ec2_for(netcloud, api)
    die_during(netcloud, "vpc:after-record", lambda: api("POST", "/vpcs", json={"cidr": "10.247.0.0/24"}),
               errors=(requests.ConnectionError,))
    [vpc] = [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.247.0.0/24"]
    vpcs = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert {g["VpcId"] for g in groups} == vpcs, "every VPC has its default group, every group its VPC"
    [sg] = [g["GroupId"] for g in groups if g["VpcId"] == vpc]
    table = until(lambda: nft_table(netcloud.label))
    assert f"inmap-{vpc}" in table["sets"] and f"members-{sg}" in table["sets"], "the restart made the rules"

    die_during(netcloud, "subnet:after-record",
               lambda: api("POST", "/subnets", json={"vpc": vpc, "cidr": "10.247.0.0/28"}),
               errors=(requests.ConnectionError,))
    [sub] = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    assert until(lambda: sub in {b["subnet"] for b in bridges.list_bridges(netcloud.label)}), \
        "the recorded subnet's bridge is made by the restart"
    assert docker_client.networks.list(names=[f"pc-{netcloud.label}-{sub}"])
    ec2.delete_subnet(SubnetId=sub)
    ec2.delete_vpc(VpcId=vpc)
    assert sub not in {b["subnet"] for b in bridges.list_bridges(netcloud.label)}, "no stray bridge"
    table = nft_table(netcloud.label)
    assert f"inmap-{vpc}" not in table["sets"] and f"members-{sg}" not in table["sets"]
