"""The cloud's records as the networking library's desired state (emulator/vpc_network.py), and the
hooks that re-apply it: pure, with fake engines (the kernel side is tests/integration/test_vpc_network.py)."""
from __future__ import annotations

import ipaddress

import pytest

from emulator.config import Config
from emulator.networks import ipam
from emulator.networks.model import Rule
from emulator.security_groups import egress_rule, rule
from emulator.services import Cloud
from emulator.vpc_network import desired
from tests.fakes import FakeDriver

HV = {"mode": "qemu", "domain_type": "qemu", "reason": "fake: configured"}


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"),
              drivers={"container": FakeDriver(), "vm": FakeDriver("vm", hypervisor=HV)})
    c.images.register("tiny", "container", "fake:tiny", "test")
    c.vpcs.taken = lambda: set()  # the host's own networks do not matter to these tests
    return c


def test_default_vpcs_subnets_and_groups_become_the_desired_state(cloud):
    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    web = cloud.security_groups.create(alice.id, "web", "web servers")
    cloud.authorize_ingress(alice, web.id, [rule("tcp", 80, 80, "0.0.0.0/0"), rule("tcp", 22, 22, "10.0.0.0/8")])
    cloud.security_groups.authorize_egress(alice.id, web.id, [egress_rule("-1", None, None, "10.9.0.0/16"),
                                                                egress_rule("tcp", 0, 65535, "192.168.0.0/16"),
                                                                egress_rule("icmp", 8, -1, "0.0.0.0/0")])
    cloud.security_groups.default(bob.id)
    want, skipped = desired(cloud.store)
    assert skipped == []
    want.check()  # the picture is one the library accepts as a whole
    assert {v.id for v in want.vpcs} == {cloud.vpcs.default(alice.id).id, cloud.vpcs.default(bob.id).id}
    assert len(want.subnets) == 6, "three default subnets per account"
    for a, b in zip(want.vpcs, want.vpcs[1:]):
        assert not ipaddress.ip_network(a.cidr).overlaps(ipaddress.ip_network(b.cidr))
    g = next(g for g in want.groups if g.id == web.id)
    assert g.vpc_id == cloud.vpcs.default(alice.id).id
    assert {r.summary() for r in g.ingress} == {"tcp 80 0.0.0.0/0", "tcp 22 10.0.0.0/8"}
    assert Rule("all", peer_cidr="0.0.0.0/0") in g.egress, "the allow-all egress every new group starts with"
    assert Rule("all", peer_cidr="10.9.0.0/16") in g.egress
    assert Rule("tcp", 1, 65535, peer_cidr="192.168.0.0/16") in g.egress, "EC2's port 0 is nft's 1"
    assert Rule("icmp", 8, -1, peer_cidr="0.0.0.0/0") in g.egress
    bob_default = next(g for g in want.groups if g.vpc_id == cloud.vpcs.default(bob.id).id)
    assert Rule("all", peer_group=bob_default.id) in bob_default.ingress, "the default group admits its members"
    assert want.forwards == () and want.ports == ()


def test_only_instances_with_an_address_of_their_subnet_get_a_port(cloud):
    alice, _ = cloud.accounts.create("alice")
    g = cloud.security_groups.default(alice.id)
    on_docker = cloud.run_instance(alice, image="tiny", security_groups=[g.id])
    on_subnet = cloud.run_instance(alice, image="tiny", security_groups=[g.id])
    stopped = cloud.run_instance(alice, image="tiny")
    gone = cloud.run_instance(alice, image="tiny")
    enis = {n.instance_id: n for n in cloud.vpcs.interfaces(alice.id, cloud.config.region, {
        i.id: None for i in (on_docker, on_subnet, stopped, gone)})}
    subnet = next(s for s in cloud.vpcs.subnets(alice.id, cloud.config.region) if s.id == enis[on_subnet.id].subnet_id)
    first = ipam.allocate_address(subnet.cidr)
    second = ipam.allocate_address(subnet.cidr, [first])
    cloud._save(on_docker.id, private_ip="172.17.0.9")
    cloud._save(on_subnet.id, private_ip=first, details={**on_subnet.details, "net": {"ifname": "veth1234"}})
    cloud._save(stopped.id, private_ip=second, state="stopped", details={**stopped.details, "net": {"ifname": "vethx"}})
    cloud._save(gone.id, private_ip=ipam.allocate_address(subnet.cidr, [first, second]), state="terminated")
    want, skipped = desired(cloud.store)
    want.check()
    ports = {p.instance_id: p for p in want.ports}
    assert set(ports) == {on_subnet.id, stopped.id}
    assert ports[on_subnet.id].ip == first and ports[on_subnet.id].ifname == "veth1234"
    assert ports[on_subnet.id].mac == enis[on_subnet.id].mac
    assert ports[on_subnet.id].groups == (g.id,)
    assert ports[stopped.id].ifname is None, "a stopped instance keeps its address but has no interface"


def test_a_record_the_library_refuses_is_left_out_not_fatal(cloud):
    alice, _ = cloud.accounts.create("alice")
    a, b, c = (cloud.run_instance(alice, image="tiny") for _ in range(3))
    enis = cloud.vpcs.interfaces(alice.id, cloud.config.region, {a.id: None, b.id: None, c.id: None})
    cidr = cloud.vpcs.subnets(alice.id, cloud.config.region, [enis[0].subnet_id])[0].cidr
    ip = ipam.allocate_address(cidr)
    cloud._save(a.id, private_ip=ipam.allocate_address(cidr, [ip]))
    cloud._save(b.id, private_ip=ip)
    cloud._save(c.id, private_ip=ip)  # two records claiming one address (a hand edit, a bug)
    with cloud.store.tx() as tx:
        tx.execute("UPDATE network_interfaces SET mac='ff:ff:ff:ff:ff:ff' WHERE instance_id=?", (a.id,))
    want, skipped = desired(cloud.store)
    want.check()
    assert [p.instance_id for p in want.ports] == [b.id], "the first claim of an address wins"
    assert len(skipped) == 2
    assert any(a.id in s and "multicast" in s for s in skipped)
    assert any(c.id in s and "another instance" in s for s in skipped)


def test_every_change_to_groups_and_vpcs_reaches_the_network(cloud, monkeypatch):
    calls = []
    monkeypatch.setattr(cloud.network, "sync", lambda: calls.append(1) or {})
    alice, _ = cloud.accounts.create("alice")
    cloud.vpcs.default(alice.id)
    assert len(calls) == 1, "a new default VPC (and its subnets)"
    g = cloud.security_groups.create(alice.id, "web", "web")
    r = rule("tcp", 80, 80)
    cloud.authorize_ingress(alice, g.id, [r])
    cloud.revoke_ingress(alice, g.id, [r])
    e = egress_rule("tcp", 443, 443, "10.0.0.0/8")
    cloud.security_groups.authorize_egress(alice.id, g.id, [e])
    rid = cloud.security_groups.get(alice.id, g.id).egress[-1].id
    cloud.modify_security_group_rules(alice, g.id, {rid: egress_rule("tcp", 444, 444, "10.0.0.0/8")})
    cloud.security_groups.revoke_egress(alice.id, g.id, [cloud.security_groups.get(alice.id, g.id).egress[-1]])
    cloud.delete_security_group(alice, g.id)
    assert len(calls) == 8
    cloud.reconcile()
    assert len(calls) == 9, "each reconcile pass applies the records again"


def test_networking_is_off_unless_asked_for(tmp_path):
    assert Config(home=tmp_path).vpc_networking == "off"
    with pytest.raises(ValueError):
        Config(home=tmp_path, vpc_networking="maybe")
    c = Cloud(Config(home=tmp_path / "h", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    assert c.network.sync() == {}, "off: nothing reaches the kernel"
