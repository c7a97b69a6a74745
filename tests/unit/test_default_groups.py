"""Each VPC's `default` security group, as AWS has it: made and removed with its VPC, not
deletable alone, given to a launch without groups, and holding two ordinary rules - all traffic
in from its own members, all traffic out - that are shown, revocable and the only thing that
lets members reach each other. Fake engines; the kernel side is
tests/integration/test_vpc_network.py."""
from __future__ import annotations

import sqlite3

import pytest

from emulator.config import Config
from emulator.errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from emulator.networks.model import Rule as NetRule
from emulator.security_groups import ALLOW_ALL, SecurityGroups, rule, self_rule
from emulator.services import Cloud
from emulator.state import MIGRATIONS, Store
from emulator.vpc_network import desired
from tests.fakes import FakeDriver


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    c.vpcs.taken = lambda: set()
    return c


def _kernel_groups(cloud) -> dict:
    want, skipped = desired(cloud.store)
    want.check()
    assert skipped == []
    return {g.id: g for g in want.groups}


def test_the_self_rule_is_a_stored_rule_and_the_only_one_that_admits_members(cloud):
    alice, _ = cloud.accounts.create("alice")
    g = cloud.security_groups.default(alice.id)
    assert g.rules == (self_rule(g.id),) and g.egress == (ALLOW_ALL,)
    assert all(r.id.startswith("sgr-") for r in g.rules + g.egress)
    assert (g.rules[0].group, g.rules[0].cidr, g.rules[0].protocol) == (g.id, "", "-1")
    assert _kernel_groups(cloud)[g.id].ingress == (NetRule("all", peer_group=g.id),)
    # Revoked (by content, as EC2's UserIdGroupPairs name it): the kernel picture has no rule left.
    cloud.revoke_ingress(alice, g.id, [rule("-1", None, None, group=g.id)])
    assert cloud.security_groups.get(alice.id, g.id).rules == ()
    assert _kernel_groups(cloud)[g.id].ingress == ()
    with pytest.raises(NotFound) as e:
        cloud.revoke_ingress(alice, g.id, [rule("-1", None, None, group=g.id)])
    assert e.value.code == "InvalidPermission.NotFound"
    # And authorized again, with networking off too (a group rule opens no host forward).
    cloud.authorize_ingress(alice, g.id, [rule("-1", None, None, group=g.id)])
    assert cloud.security_groups.get(alice.id, g.id).rules == (self_rule(g.id),)
    assert _kernel_groups(cloud)[g.id].ingress == (NetRule("all", peer_group=g.id),)


def test_another_accounts_group_is_not_found_and_changes_nothing(cloud):
    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    mine, theirs = cloud.security_groups.default(alice.id), cloud.security_groups.default(bob.id)
    before = cloud.security_groups.all_rules(alice.id), cloud.security_groups.all_rules(bob.id)
    for call in (lambda: cloud.authorize_ingress(alice, mine.id, [rule("-1", None, None, group=theirs.id)]),
                 lambda: cloud.revoke_ingress(alice, theirs.id, [self_rule(theirs.id)]),
                 lambda: cloud.delete_security_group(alice, theirs.id)):
        with pytest.raises(NotFound) as e:
            call()
        assert e.value.code == "InvalidGroup.NotFound"
    assert (cloud.security_groups.all_rules(alice.id), cloud.security_groups.all_rules(bob.id)) == before


def test_every_vpc_has_its_own_default_group_made_and_removed_with_it(cloud):
    alice, _ = cloud.accounts.create("alice")
    home = cloud.security_groups.default(alice.id)
    vpc = cloud.create_vpc(alice, "10.77.0.0/16")
    [own] = [g for g in cloud.security_groups.list(alice.id) if g.vpc_id == vpc.id]
    assert (own.name, own.rules, own.egress) == ("default", (self_rule(own.id),), (ALLOW_ALL,))
    assert own.id != home.id and cloud.security_groups.default(alice.id, vpc.id) == own
    assert cloud.security_groups.get(alice.id, "default") == home, "a name means the default VPC's group"
    with pytest.raises(InvalidState) as e:
        cloud.delete_security_group(alice, own.id)
    assert e.value.code == "CannotDelete"
    with pytest.raises(InvalidParameter) as e:
        cloud.security_groups.create(alice.id, "default", "mine", vpc.id)
    assert e.value.code == "InvalidGroup.Reserved"
    # Names are unique per VPC, as on AWS: one "web" in each VPC, a second in one is refused.
    cloud.security_groups.create(alice.id, "web", "home")
    web = cloud.security_groups.create(alice.id, "web", "lab", vpc.id)
    with pytest.raises(AlreadyExists):
        cloud.security_groups.create(alice.id, "web", "again", vpc.id)
    with pytest.raises(InvalidState) as e:
        cloud.delete_vpc(alice, vpc.id)
    assert e.value.code == "DependencyViolation", "another group still in it"
    cloud.delete_security_group(alice, web.id)
    cloud.delete_vpc(alice, vpc.id)
    assert own.id not in {g.id for g in cloud.security_groups.list(alice.id)}
    assert cloud.store.one("SELECT 1 FROM security_group_rules WHERE group_id=?", (own.id,)) is None


def test_a_launch_without_groups_gets_its_vpcs_default_group(cloud):
    alice, _ = cloud.accounts.create("alice")
    vpc = cloud.create_vpc(alice, "10.78.0.0/16")
    subnet = cloud.create_subnet(alice, vpc.id, "10.78.1.0/24")
    inst = cloud.run_instance(alice, image="tiny", security_groups=["default"], extra={"subnet_id": subnet.id})
    assert inst.details["security_groups"] == [cloud.security_groups.default(alice.id, vpc.id).id]
    home = cloud.security_groups.default(alice.id)
    with pytest.raises(InvalidParameter, match="different networks"):
        cloud.run_instance(alice, image="tiny", security_groups=[home.id], extra={"subnet_id": subnet.id})


def test_a_crash_inside_create_vpc_leaves_neither_vpc_nor_group(cloud):
    alice, _ = cloud.accounts.create("alice")
    cloud.security_groups.default(alice.id)
    before = cloud.store.query("SELECT id FROM vpcs"), cloud.store.query("SELECT id FROM security_groups")

    def dies(c, owner, vpc_id, now):  # the process dying between the two inserts: one transaction
        cloud.security_groups.insert_default(c, owner, vpc_id, now)
        raise KeyboardInterrupt

    cloud.vpcs.with_default_group = dies
    with pytest.raises(KeyboardInterrupt):
        cloud.create_vpc(alice, "10.79.0.0/16")
    after = cloud.store.query("SELECT id FROM vpcs"), cloud.store.query("SELECT id FROM security_groups")
    assert [[tuple(r) for r in x] for x in after] == [[tuple(r) for r in x] for x in before]


def test_migration_gives_every_vpc_a_default_group_with_its_self_rule(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:15]:
        for stmt in script.split(";"):
            if stmt.strip():
                conn.execute(stmt)
    conn.execute("PRAGMA user_version = 15")
    conn.executescript("""
        INSERT INTO accounts (id, name, role, created_at) VALUES ('111122223333', 'old', 'user', 0);
        INSERT INTO vpcs (id, owner, cidr, is_default, created_at) VALUES
            ('vpc-0000000000000000a', '111122223333', '10.1.0.0/16', 1, 1),
            ('vpc-0000000000000000b', '111122223333', '10.2.0.0/16', 0, 2);
        INSERT INTO security_groups (id, owner, name, description, created_at, vpc_id) VALUES
            ('sg-0000000000000000d', '111122223333', 'default', 'default VPC security group', 1, NULL),
            ('sg-0000000000000000e', '111122223333', 'web', 'web', 1, 'vpc-0000000000000000b');
        INSERT INTO security_group_rules (id, group_id, owner, egress, protocol, from_port, to_port, cidr, created_at)
        VALUES ('sgr-0000000000000000f', 'sg-0000000000000000e', '111122223333', 0, 'tcp', 80, 80, '0.0.0.0/0', 1),
               ('sgr-00000000000000010', 'sg-0000000000000000d', '111122223333', 1, '-1', -1, -1, '0.0.0.0/0', 1);
    """)
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == len(MIGRATIONS)
    groups = SecurityGroups(store)
    old = groups.get("111122223333", "sg-0000000000000000d")
    assert (old.vpc_id, old.rules, old.egress) == ("vpc-0000000000000000a", (self_rule(old.id),), (ALLOW_ALL,))
    new = groups.default("111122223333", "vpc-0000000000000000b")
    assert new.id != old.id and (new.rules, new.egress) == ((self_rule(new.id),), (ALLOW_ALL,))
    web = groups.get("111122223333", "sg-0000000000000000e")
    assert [(r.protocol, r.from_port) for r in web.rules] == [("tcp", 80)], "other rules survive the rebuild"
    assert store.one("PRAGMA foreign_keys")[0] == 1
    assert groups.store.one("SELECT COUNT(*) FROM security_groups")[0] == 3
