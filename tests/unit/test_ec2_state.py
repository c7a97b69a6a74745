"""The describe-level EC2 state (VPCs, subnets, interfaces, volumes, tags, rules): ids,
CIDR allocation, ownership, and the migration of security groups made before rule ids."""
from __future__ import annotations

import json
import re
import sqlite3
import struct
import time

import pytest

from emulator.accounts import Accounts
from emulator.errors import AlreadyExists, InvalidParameter, NotFound, QuotaExceeded
from emulator.security_groups import ALLOW_ALL, SecurityGroups, egress_rule, rule
from emulator.state import MIGRATIONS, Store
from emulator.tags import Tags
from emulator.volumes import qcow2_virtual_size, root_size_gib
from emulator.vpcs import Vpcs

@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "state.db")


@pytest.fixture
def owners(store, tmp_path):
    accounts = Accounts(store, tmp_path / "master.key")
    return [accounts.create(f"acct{i}")[0].id for i in range(3)]


def vpcs_with(store, taken):
    return Vpcs(store, taken=lambda: set(taken))


def test_default_vpcs_get_distinct_blocks_around_host_routes(store, owners):
    v = vpcs_with(store, ["10.0.0.0/16", "10.1.7.0/24", "192.168.122.0/24"])
    a, b = v.default(owners[0]), v.default(owners[1])
    assert (a.cidr, b.cidr) == ("10.2.0.0/16", "10.3.0.0/16")
    assert re.fullmatch(r"vpc-[0-9a-f]{17}", a.id) and a.is_default
    # stable: asked again, or by another Vpcs over the same state (a second server process)
    assert v.default(owners[0]) == a and vpcs_with(store, []).default(owners[0]) == a


def test_allocation_skips_the_reserved_test_range_and_says_when_full(store, owners):
    v = vpcs_with(store, [f"10.{i}.0.0/16" for i in range(213)])
    assert v.default(owners[0]).cidr == "10.214.0.0/16"  # 10.213.0.0/16 is the test suites' VM networks
    with pytest.raises(QuotaExceeded) as e:
        vpcs_with(store, ["10.0.0.0/8"]).default(owners[1])
    assert e.value.code == "VpcLimitExceeded"
    assert store.one("SELECT COUNT(*) FROM vpcs WHERE owner=?", (owners[1],))[0] == 0  # nothing half made


def test_subnets_one_per_zone_and_placement(store, owners):
    v = vpcs_with(store, [])
    vpc = v.default(owners[0])
    subnets = v.subnets(owners[0], "eu-west-1")
    assert [(s.zone, s.cidr, s.vpc_id, s.is_default) for s in subnets] == [
        ("eu-west-1a", "10.0.0.0/20", vpc.id, True), ("eu-west-1b", "10.0.16.0/20", vpc.id, True),
        ("eu-west-1c", "10.0.32.0/20", vpc.id, True)]
    assert subnets[0].available_ips == 4091
    assert v.subnet_for(owners[0], "eu-west-1") == subnets[0]
    assert v.subnet_for(owners[0], "eu-west-1", zone="eu-west-1c") == subnets[2]
    assert v.subnet_for(owners[0], "eu-west-1", subnets[1].id) == subnets[1]
    for call, code in [(lambda: v.subnet_for(owners[0], "eu-west-1", zone="eu-west-1z"), "InvalidParameterValue"),
                       (lambda: v.subnet_for(owners[0], "eu-west-1", subnets[1].id, "eu-west-1a"),
                        "InvalidParameterCombination"),
                       (lambda: v.subnets(owners[0], "eu-west-1", ["subnet-123"]), "InvalidSubnetID.Malformed"),
                       (lambda: v.list(owners[0], ["vpc-nope"]), "InvalidVpcID.Malformed")]:
        with pytest.raises((InvalidParameter, NotFound)) as e:
            call()
        assert e.value.code == code
    # another account's subnet and VPC answer like missing ones
    with pytest.raises(NotFound) as e:
        v.subnets(owners[1], "eu-west-1", [subnets[0].id])
    assert e.value.code == "InvalidSubnetID.NotFound"
    with pytest.raises(NotFound) as e:
        v.get(owners[1], vpc.id)
    assert e.value.code == "InvalidVpcID.NotFound"


def _instance(store, owner, iid):
    now = time.time()
    with store.tx() as c:
        c.execute("INSERT INTO instances (id, owner, name, kind, image, type, state, created_at, updated_at) "
                  "VALUES (?,?,?,?,?,?,?,?,?)", (iid, owner, iid, "container", "tiny", "t2.nano", "running", now, now))


def test_interfaces_are_made_once_in_the_chosen_subnet(store, owners):
    v = vpcs_with(store, [])
    _instance(store, owners[0], "i-0000000000000000a")
    _instance(store, owners[0], "i-0000000000000000b")
    zone_b = v.subnets(owners[0], "r1")[1]
    first = v.interfaces(owners[0], "r1", {"i-0000000000000000a": zone_b.id, "i-0000000000000000b": None})
    by_inst = {n.instance_id: n for n in first}
    assert by_inst["i-0000000000000000a"].zone == "r1b" and by_inst["i-0000000000000000b"].zone == "r1a"
    assert re.fullmatch(r"eni-[0-9a-f]{17}", by_inst["i-0000000000000000a"].id)
    assert re.fullmatch(r"0e(:[0-9a-f]{2}){5}", by_inst["i-0000000000000000a"].mac)
    # asked again with another subnet: the interface stays where it was made
    again = v.interfaces(owners[0], "r1", {"i-0000000000000000a": None})
    assert again == [by_inst["i-0000000000000000a"]]
    # forgotten instances take their interfaces with them
    with store.tx() as c:
        c.execute("DELETE FROM instances WHERE id='i-0000000000000000a'")
    assert store.one("SELECT COUNT(*) FROM network_interfaces")[0] == 1


def test_security_groups_have_rule_ids_and_default_egress(store, owners):
    groups = SecurityGroups(store)
    g = groups.create(owners[0], "web", "web servers")
    assert g.vpc_id == Vpcs(store).default(owners[0]).id
    assert g.egress == (ALLOW_ALL,) and re.fullmatch(r"sgr-[0-9a-f]{17}", g.egress[0].id)
    g = groups.authorize(owners[0], g.id, [rule("tcp", 80, 80, "0.0.0.0/0", "http")])
    [http] = g.rules
    assert http.description == "http" and http.id.startswith("sgr-")
    with pytest.raises(AlreadyExists) as e:
        groups.authorize(owners[0], g.id, [rule("6", 80, 80)])
    assert e.value.code == "InvalidPermission.Duplicate"
    g, [new_id] = groups.authorize_egress(owners[0], g.id, [egress_rule("udp", 53, 53, "10.0.0.0/8")])
    g = groups.revoke_egress(owners[0], g.id, groups.rules_by_id(owners[0], g.id, [g.egress[0].id], True))
    assert [r.id for r in g.egress] == [new_id]
    g = groups.replace_rules(owners[0], g.id, {http.id: rule("tcp", 8080, 8081, "10.1.0.0/16")})
    assert [(r.id, r.from_port, r.to_port, r.cidr) for r in g.rules] == [(http.id, 8080, 8081, "10.1.0.0/16")]
    with pytest.raises(NotFound) as e:
        groups.rules_by_id(owners[0], g.id, ["sgr-00000000000000000"], False)
    assert e.value.code == "InvalidSecurityGroupRuleId.NotFound"
    with pytest.raises(InvalidParameter) as e:
        groups.rules_by_id(owners[0], g.id, ["sgr-1"], False)
    assert e.value.code == "InvalidSecurityGroupRuleId.Malformed"
    with pytest.raises(NotFound) as e:  # another account's group
        groups.get(owners[1], g.id)
    assert e.value.code == "InvalidGroup.NotFound"
    with pytest.raises(InvalidParameter) as e:
        groups.get(owners[0], "sg-12")
    assert e.value.code == "InvalidGroupId.Malformed"
    Tags(store).set(owners[0], [g.id, new_id], {"team": "a"})
    groups.delete(owners[0], g.id, in_use=False)
    assert store.one("SELECT COUNT(*) FROM security_group_rules WHERE group_id=?", (g.id,))[0] == 0
    assert Tags(store).of(owners[0]) == {}


def test_rule_builders_refuse_what_cannot_happen():
    for args in (("-1", None, None), ("udp", 53, 53), ("tcp", 1, 100), ("tcp", 0, 0)):
        with pytest.raises(InvalidParameter):
            rule(*args)
    assert egress_rule("all", None, None) == ALLOW_ALL
    icmp = egress_rule("icmp", 8, -1)
    assert (icmp.protocol, icmp.from_port, icmp.to_port) == ("icmp", 8, -1)
    with pytest.raises(InvalidParameter):
        egress_rule("gre", 0, 0)
    with pytest.raises(InvalidParameter):
        egress_rule("tcp", 0, 80, "::/0")


def test_migration_gives_old_rules_ids_and_default_egress(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for i, script in enumerate(MIGRATIONS[:3]):
        for stmt in script.split(";"):
            if stmt.strip():
                conn.execute(stmt)
    conn.execute("PRAGMA user_version = 3")
    conn.execute("INSERT INTO accounts (id, name, role, created_at) VALUES ('111122223333', 'old', 'user', 0)")
    conn.execute("INSERT INTO security_groups (id, owner, name, description, rules, created_at) VALUES (?,?,?,?,?,?)",
                 ("sg-0123456789abcdef0", "111122223333", "web", "old group",
                  json.dumps([{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}]), 1.0))
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == len(MIGRATIONS)
    g = SecurityGroups(store).get("111122223333", "sg-0123456789abcdef0")
    assert [(r.protocol, r.from_port, r.cidr) for r in g.rules] == [("tcp", 22, "0.0.0.0/0")]
    assert g.egress == (ALLOW_ALL,)
    assert all(re.fullmatch(r"sgr-[0-9a-f]{17}", r.id) for r in g.rules + g.egress)
    assert g.vpc_id.startswith("vpc-")  # made before VPCs: placed in its account's default VPC


def test_tags_limits_and_deletes(store, owners):
    tags = Tags(store)
    tags.set(owners[0], ["vpc-1", "subnet-1"], {"a": "1", "b": "2"})
    tags.delete(owners[0], ["vpc-1"], {"a": "wrong", "b": None})
    assert tags.of(owners[0]) == {"vpc-1": {"a": "1"}, "subnet-1": {"a": "1", "b": "2"}}
    tags.delete(owners[0], ["subnet-1"], {})
    assert tags.of(owners[0], ["subnet-1"]) == {} and tags.of(owners[1]) == {}
    with pytest.raises(InvalidParameter):
        tags.set(owners[0], ["vpc-1"], {f"k{i}": "v" for i in range(50)})  # 51 with the one it has
    with pytest.raises(InvalidParameter):
        tags.set(owners[0], ["vpc-1"], {"aws:reserved": "x"})
    tags.set(owners[0], ["eni-00000000000000001", "vol-00000000000000001"], {"k": "v"})
    tags.prune(owners[0])  # neither exists: their instance was forgotten
    assert set(tags.of(owners[0])) == {"vpc-1"}


def test_root_volume_size_from_the_qcow2_header(tmp_path):
    disk = tmp_path / "img" / "disk.qcow2"
    disk.parent.mkdir()
    disk.write_bytes(b"QFI\xfb" + b"\0" * 20 + struct.pack(">Q", 3 * 1024 ** 3 + 1) + b"\0" * 64)
    assert qcow2_virtual_size(disk) == 3 * 1024 ** 3 + 1
    assert root_size_gib("vm", str(disk.parent), {"disk": "disk.qcow2"}, 10) == 4
    assert root_size_gib("container", "", {}, 7_000_000) == 1
    (tmp_path / "img" / "raw").write_bytes(b"not qcow2" * 10)
    assert qcow2_virtual_size(tmp_path / "img" / "raw") is None
