"""Security-group rules whose peer is another group (AWS's UserIdGroupPairs): recorded, checked
(the caller's own groups, of one VPC), shown, turned into the library's member-set rules, and
followed when an instance changes groups. Fake engines; the kernel side is
tests/integration/test_vpc_network.py."""
from __future__ import annotations

import pytest

from emulator.config import Config
from emulator.errors import InvalidParameter, InvalidState, NotFound
from emulator.networks import ipam
from emulator.networks.model import Rule as NetRule
from emulator.security_groups import SecurityGroups, egress_rule, rule
from emulator.services import Cloud
from emulator.vpc_network import desired
from tests.fakes import FakeDriver


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    c.vpcs.taken = lambda: set()
    return c


def _on_subnet(cloud, inst, taken: list[str]) -> str:
    """Give an instance an address of its subnet, as the launch does with networking on."""
    [eni] = cloud.vpcs.interfaces(inst.owner, cloud.config.region, {inst.id: None})
    cidr = cloud.vpcs.subnets(inst.owner, cloud.config.region, [eni.subnet_id])[0].cidr
    ip = ipam.allocate_address(cidr, taken)
    cloud._save(inst.id, private_ip=ip)
    taken.append(ip)
    return ip


def test_a_rule_naming_a_group_becomes_a_member_set_rule(cloud):
    alice, _ = cloud.accounts.create("alice")
    web = cloud.security_groups.create(alice.id, "web", "servers")
    client = cloud.security_groups.create(alice.id, "client", "their clients")
    cloud.authorize_ingress(alice, web.id, [rule("tcp", 8080, 8080, group=client.id)])
    cloud.security_groups.authorize_egress(alice.id, client.id, [egress_rule("udp", 53, 53, group=web.id)])
    [r] = cloud.security_groups.get(alice.id, web.id).rules
    assert (r.group, r.cidr, r.text()) == (client.id, "", f"tcp 8080-8080 {client.id}")
    want, skipped = desired(cloud.store)
    want.check()
    assert skipped == []
    groups = {g.id: g for g in want.groups}
    assert groups[web.id].ingress == (NetRule("tcp", 8080, 8080, peer_group=client.id),)
    assert NetRule("udp", 53, 53, peer_group=web.id) in groups[client.id].egress


def test_members_join_and_leave_the_sets_rules_name(cloud):
    alice, _ = cloud.accounts.create("alice")
    web = cloud.security_groups.create(alice.id, "web", "servers")
    client = cloud.security_groups.create(alice.id, "client", "their clients")
    cloud.authorize_ingress(alice, web.id, [rule("tcp", 8080, 8080, group=client.id)])
    taken: list[str] = []
    server = cloud.run_instance(alice, image="tiny", security_groups=[web.id])
    other = cloud.run_instance(alice, image="tiny", security_groups=[web.id])
    _on_subnet(cloud, server, taken)
    ip = _on_subnet(cloud, other, taken)
    assert cloud._row(server.id).ports == [], "a rule naming a group forwards nothing from the host"

    def members() -> set[str]:
        want, _ = desired(cloud.store)
        return {p.ip for p in want.ports if client.id in p.groups}

    assert members() == set()
    cloud.modify_instance_groups(alice, other.id, [client.id])
    assert members() == {ip} and cloud._row(other.id).details["security_groups"] == [client.id]
    cloud.modify_instance_groups(alice, other.id, [web.id])
    assert members() == set(), "it left the group"
    cloud.modify_instance_groups(alice, other.id, [client.id])
    cloud.terminate_instance(alice, other.id)
    assert members() == set(), "a terminated instance is nobody's member"


def test_another_accounts_or_another_vpcs_group_is_not_found_and_changes_nothing(cloud):
    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    mine = cloud.security_groups.create(alice.id, "web", "servers")
    theirs = cloud.security_groups.create(bob.id, "web", "servers")
    with pytest.raises(NotFound) as e:
        cloud.authorize_ingress(alice, mine.id, [rule("tcp", 22, 22, group=theirs.id)])
    assert e.value.code == "InvalidGroup.NotFound"
    vpc = cloud.create_vpc(alice, "10.77.0.0/16")
    elsewhere = cloud.security_groups.create(alice.id, "elsewhere", "another VPC", vpc.id)
    with pytest.raises(NotFound) as e:
        cloud.authorize_ingress(alice, mine.id, [rule("tcp", 22, 22, group=elsewhere.id)])
    assert e.value.code == "InvalidGroup.NotFound" and "different networks" in str(e.value)
    assert cloud.security_groups.get(alice.id, mine.id).rules == ()
    with pytest.raises(InvalidParameter) as e:
        rule("tcp", 22, 22, group="sg-nothex")
    assert e.value.code == "InvalidGroupId.Malformed"
    inst = cloud.run_instance(alice, image="tiny", security_groups=[mine.id])
    with pytest.raises(NotFound):
        cloud.modify_instance_groups(alice, inst.id, [theirs.id])
    with pytest.raises(InvalidParameter) as e:
        cloud.modify_instance_groups(alice, inst.id, [elsewhere.id])
    assert "different networks" in str(e.value)
    with pytest.raises(NotFound):
        cloud.modify_instance_groups(bob, inst.id, [theirs.id])  # another account's instance
    with pytest.raises(InvalidParameter):
        cloud.run_instance(alice, image="tiny", security_groups=[elsewhere.id])
    assert cloud._row(inst.id).details["security_groups"] == [mine.id]


def test_a_referenced_group_cannot_be_deleted_and_a_revoke_names_the_pair(cloud):
    alice, _ = cloud.accounts.create("alice")
    web = cloud.security_groups.create(alice.id, "web", "servers")
    client = cloud.security_groups.create(alice.id, "client", "their clients")
    r = rule("tcp", 8080, 8080, group=client.id)
    cloud.authorize_ingress(alice, web.id, [r])
    cloud.authorize_ingress(alice, client.id, [rule("tcp", 1, 2, group=client.id)])  # itself: no dependency
    with pytest.raises(InvalidState) as e:
        cloud.delete_security_group(alice, client.id)
    assert e.value.code == "DependencyViolation" and web.id in str(e.value)
    with pytest.raises(NotFound):
        cloud.revoke_ingress(alice, web.id, [rule("tcp", 8080, 8080, group=web.id)])
    cloud.revoke_ingress(alice, web.id, [r])
    cloud.delete_security_group(alice, client.id)
    assert SecurityGroups.ports([cloud.security_groups.get(alice.id, web.id)]) == []


def test_a_hand_edited_rule_naming_a_missing_group_is_left_out_alone(cloud):
    alice, _ = cloud.accounts.create("alice")
    web = cloud.security_groups.create(alice.id, "web", "servers")
    cloud.authorize_ingress(alice, web.id, [rule("tcp", 80, 80), rule("tcp", 81, 81, group=web.id)])
    with cloud.store.tx() as c:
        c.execute("UPDATE security_group_rules SET ref_group='sg-0123456789abcdef0' WHERE ref_group=?", (web.id,))
    want, skipped = desired(cloud.store)
    want.check()
    [g] = [g for g in want.groups if g.id == web.id]
    assert g.ingress == (NetRule("tcp", 80, 80, peer_cidr="0.0.0.0/0"),), "the group keeps its other rules"
    assert len(skipped) == 1 and "sg-0123456789abcdef0" in skipped[0]
