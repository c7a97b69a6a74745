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
    cloud._save(on_subnet.id, private_ip=first, details={**on_subnet.details, "net": {"ifname": "veth1234"}},
                ports=[{"guest": 80, "host": 20080, "host_ip": "127.0.0.1", "protocol": "tcp"}])
    cloud._save(on_docker.id, ports=[{"guest": 80, "host": 20081, "host_ip": "127.0.0.1", "protocol": "tcp"}])
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
    assert [(f.host_port, f.ip, f.port) for f in want.forwards] == [(20080, first, 80)], \
        "a subnet instance's forwards are kernel DNAT; one on Docker's network keeps the engine's"


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


def test_a_stopped_vm_on_a_subnet_is_pinned_before_its_engine_starts(cloud, monkeypatch):
    """StartInstances waits for the guest to be ready; unpinned, its tap's frames are dropped, so
    no DHCP lease and no SSH: the start timed out. The rules must follow before the engine starts."""
    cloud.images.register("tiny", "vm", "/fake/tiny", "test")
    alice, _ = cloud.accounts.create("alice")
    vm = cloud.run_instance(alice, image="tiny", kind="vm")
    cloud.wait_for_launches(10)  # a VM launches in the background
    [eni] = cloud.vpcs.interfaces(alice.id, cloud.config.region, {vm.id: None})
    cidr = cloud.vpcs.subnets(alice.id, cloud.config.region, [eni.subnet_id])[0].cidr
    cloud._save(vm.id, private_ip=ipam.allocate_address(cidr), state="stopped",
                details={**vm.details, "net": {"subnet_id": eni.subnet_id, "ifname": "pct-tap0"}})
    synced, seen_at_start = [], []
    monkeypatch.setattr(cloud.network, "sync", lambda: synced.append(
        next(p.ifname for p in desired(cloud.store)[0].ports if p.instance_id == vm.id)) or {})
    driver = cloud.driver("vm")
    start = driver.start
    monkeypatch.setattr(driver, "start", lambda engine_id: seen_at_start.append(list(synced)) or start(engine_id))
    cloud.start_instance(alice, vm.id)
    assert seen_at_start == [["pct-tap0"]], "the rules pinned its tap once, before the engine started it"
    assert cloud.get_instance(alice, vm.id).state == "running"


def test_a_launch_naming_no_group_gets_its_vpcs_default_group_on_a_subnet(cloud, monkeypatch):
    """REST, the CLI and the console name no groups; on a subnet a port without groups sends and
    admits nothing, so such a launch gets its VPC's default group, as EC2's RunInstances does."""
    alice, _ = cloud.accounts.create("alice")
    off = cloud.run_instance(alice, image="tiny")
    assert "security_groups" not in off.details, "networking off: groups only open host forwards"
    monkeypatch.setattr(cloud.network, "enabled", True)
    monkeypatch.setattr(cloud.network, "sync", lambda: {})
    monkeypatch.setattr(cloud.network, "follow", lambda before, after: after)  # no dockerd to ask for a veth
    on = cloud.run_instance(alice, image="tiny")
    default_vpc = cloud.vpcs.default(alice.id)
    assert on.details["security_groups"] == [cloud.security_groups.default(alice.id, default_vpc.id).id]
    assert on.details["net"]["subnet_id"] in {s.id for s in cloud.vpcs.subnets(alice.id, cloud.config.region)
                                              if s.vpc_id == default_vpc.id}
    mine = cloud.security_groups.create(alice.id, "web", "web")
    chosen = cloud.run_instance(alice, image="tiny", security_groups=[mine.id])
    assert chosen.details["security_groups"] == [mine.id], "a launch's own groups are kept as given"


def test_a_failed_launch_takes_its_address_off_the_network_at_once(cloud, monkeypatch):
    """A launch pins its address (and serves a VM's DHCP reservation) before the engine runs; when
    it fails, the rules follow the record then, not at the next reconcile pass."""
    from emulator.errors import EngineError

    cloud.images.register("tiny", "vm", "/fake/tiny", "test")
    alice, _ = cloud.accounts.create("alice")
    states = []
    monkeypatch.setattr(cloud.network, "sync", lambda: states.append(
        {r["id"]: r["state"] for r in cloud.store.query("SELECT id, state FROM instances")}) or {})
    for kind in ("vm", "container"):
        cloud.driver(kind).fail_launch = True
    vm = cloud.run_instance(alice, image="tiny", kind="vm")
    cloud.wait_for_launches(10)
    assert cloud.get_instance(alice, vm.id).state == "terminated"
    assert states and states[-1][vm.id] == "terminated", "the network was synced after the record said so"
    with pytest.raises(EngineError):
        cloud.run_instance(alice, image="tiny")
    assert set(states[-1]) == {vm.id}, "the failed container's record is gone, and the network synced after"


def test_networking_is_on_unless_turned_off(tmp_path, monkeypatch):
    monkeypatch.delenv("POCKETCLOUD_VPC_NETWORKING", raising=False)
    assert Config(home=tmp_path).vpc_networking == "on"
    monkeypatch.setenv("POCKETCLOUD_VPC_NETWORKING", "off")
    assert Config(home=tmp_path).vpc_networking == "off"
    with pytest.raises(ValueError):
        Config(home=tmp_path, vpc_networking="maybe")
    c = Cloud(Config(home=tmp_path / "h", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    assert c.network.sync() == {}, "off: nothing reaches the kernel"


# -- CreateVpc / DeleteVpc / CreateSubnet / DeleteSubnet (records; the kernel side is integration) --

def code(excinfo) -> str:
    return excinfo.value.code


def test_vpc_blocks_are_checked_against_the_cloud_and_the_host(cloud):
    from emulator.errors import CloudError

    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    cloud.vpcs.taken = lambda: {"192.168.5.0/24"}
    vpc = cloud.create_vpc(alice, "172.20.0.0/16")
    assert (vpc.cidr, vpc.is_default) == ("172.20.0.0/16", False)
    for who, cidr, want in [(bob, "172.20.128.0/17", "InvalidVpc.Range"),  # another account's VPC
                            (alice, cloud.vpcs.default(bob.id).cidr, "InvalidVpc.Range"),
                            (alice, "192.168.0.0/16", "InvalidVpc.Range"),  # a host network
                            (alice, "10.213.0.0/20", "InvalidVpc.Range"),  # reserved for the test VM networks
                            (alice, "8.8.0.0/16", "InvalidVpc.Range"),  # not private
                            (alice, "10.50.0.0/8", "InvalidParameterValue"),  # host bits set
                            (alice, "10.48.0.0/12", "InvalidVpc.Range"),  # larger than /16
                            (alice, "x" * 5000, "InvalidParameterValue")]:
        before = cloud.store.query("SELECT id FROM vpcs")
        with pytest.raises(CloudError) as e:
            cloud.create_vpc(who, cidr)
        assert code(e) == want, cidr
        assert cloud.store.query("SELECT id FROM vpcs") == before, "a refused create records nothing"


def test_subnets_stay_inside_their_vpc_and_apart(cloud):
    from emulator.errors import CloudError

    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    vpc = cloud.create_vpc(alice, "172.21.0.0/16")
    s = cloud.create_subnet(alice, vpc.id, "172.21.1.0/24", "us-east-1b")
    assert (s.vpc_id, s.cidr, s.zone, s.is_default) == (vpc.id, "172.21.1.0/24", "us-east-1b", False)
    assert s.available_ips == 251
    cloud.vpcs.taken = lambda: {"172.21.9.0/24", "172.21.1.0/24", vpc.cidr}  # one foreign network in the block
    cases = [(alice, vpc.id, "172.21.1.128/25", None, "InvalidSubnet.Conflict"),
             (alice, vpc.id, "172.21.8.0/21", None, "InvalidSubnet.Conflict"),  # the host's network
             (alice, vpc.id, "172.22.0.0/24", None, "InvalidSubnet.Range"),
             (alice, vpc.id, "172.21.2.0/29", None, "InvalidSubnet.Range"),  # smaller than /28
             (alice, vpc.id, "172.21.2.0/24", "us-east-1z", "InvalidParameterValue"),
             (alice, vpc.id, "172.21.2.0/24", "eu-west-1a", "InvalidParameterValue"),
             (bob, vpc.id, "172.21.2.0/24", None, "InvalidVpcID.NotFound"),  # another account's VPC
             (alice, "vpc-zz", "172.21.2.0/24", None, "InvalidVpcID.Malformed")]
    for who, vid, cidr, zone, want in cases:
        with pytest.raises(CloudError) as e:
            cloud.create_subnet(who, vid, cidr, zone)
        assert code(e) == want, (cidr, zone)
    assert [x.id for x in cloud.vpcs.subnets(alice.id, "us-east-1") if x.vpc_id == vpc.id] == [s.id]


def test_deletes_refuse_dependencies_and_other_accounts(cloud):
    from emulator.errors import CloudError

    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    vpc = cloud.create_vpc(alice, "172.23.0.0/16")
    s = cloud.create_subnet(alice, vpc.id, "172.23.0.0/24")
    for call, want in [(lambda: cloud.delete_vpc(alice, vpc.id), "DependencyViolation"),
                       (lambda: cloud.delete_vpc(bob, vpc.id), "InvalidVpcID.NotFound"),
                       (lambda: cloud.delete_subnet(bob, s.id), "InvalidSubnetID.NotFound"),
                       (lambda: cloud.delete_vpc(alice, cloud.vpcs.default(alice.id).id), "OperationNotPermitted")]:
        with pytest.raises(CloudError) as e:
            call()
        assert code(e) == want
    inst, = cloud.run_instances_in_subnet(alice, subnet_id=s.id, image="tiny")[1]
    with pytest.raises(CloudError) as e:
        cloud.delete_subnet(alice, s.id)
    assert code(e) == "DependencyViolation", "an instance launched into it (no interface made yet)"
    cloud.describe_instances(alice)
    cloud.vpcs.interfaces(alice.id, "us-east-1", {inst.id: s.id})
    cloud.terminate_instance(alice, inst.id)
    cloud.delete_subnet(alice, s.id)  # a terminated instance's interface goes with the subnet
    cloud.delete_vpc(alice, vpc.id)
    assert vpc.id not in {v.id for v in cloud.vpcs.list(alice.id)}


def test_a_create_whose_network_fails_leaves_no_record(cloud, monkeypatch):
    from emulator.errors import EngineError

    alice, _ = cloud.accounts.create("alice")
    vpc = cloud.create_vpc(alice, "172.24.0.0/16")
    calls = []

    def broken():
        calls.append(1)
        if len(calls) == 1:
            raise EngineError("docker could not create network: pool overlaps")
        return {}

    monkeypatch.setattr(cloud.network, "sync", broken)
    with pytest.raises(EngineError):
        cloud.create_subnet(alice, vpc.id, "172.24.0.0/24")
    assert [x for x in cloud.vpcs.subnets(alice.id, "us-east-1") if x.vpc_id == vpc.id] == []
    assert len(calls) == 2, "the host is matched again after the record is dropped (removing what was made)"
    calls.clear()
    with pytest.raises(EngineError):
        cloud.create_vpc(alice, "172.25.0.0/16")
    assert "172.25.0.0/16" not in {v.cidr for v in cloud.vpcs.list(alice.id)}


def test_another_subnet_that_cannot_be_made_does_not_fail_a_create(cloud, monkeypatch):
    from emulator.errors import EngineError

    alice, _ = cloud.accounts.create("alice")
    vpc = cloud.create_vpc(alice, "172.24.0.0/16")
    stuck = cloud.vpcs.subnets(alice.id, "us-east-1")[0].id  # its block taken on the host meanwhile
    failed = {stuck: "docker could not create network: pool overlaps"}
    monkeypatch.setattr(cloud.network, "sync", lambda: {"failed": dict(failed)})
    made = cloud.create_subnet(alice, vpc.id, "172.24.0.0/24")
    assert made.id in {x.id for x in cloud.vpcs.subnets(alice.id, "us-east-1")}, "the reconcile pass retries the other"
    monkeypatch.setattr(cloud.network, "sync", lambda: {"failed": {s.id: "pool overlaps" for s in
                                                                   cloud.vpcs.subnets(alice.id, "us-east-1")}})
    with pytest.raises(EngineError) as e:
        cloud.create_subnet(alice, vpc.id, "172.24.1.0/24")
    assert "pool overlaps" in str(e.value)
    assert "172.24.1.0/24" not in {x.cidr for x in cloud.vpcs.subnets(alice.id, "us-east-1")}, "its own: dropped"


def test_the_metadata_lookup_answers_only_instances_on_a_subnet(cloud):
    from emulator.vpc_metadata import key_lookup, lookup

    alice, _ = cloud.accounts.create("alice")
    on, off = (cloud.run_instance(alice, image="tiny", user_data="hi") for _ in range(2))
    eni = next(n for n in cloud.vpcs.interfaces(alice.id, "us-east-1", {on.id: None, off.id: None})
               if n.instance_id == on.id)
    subnet = cloud.vpcs.subnets(alice.id, "us-east-1", [eni.subnet_id])[0]
    ip = ipam.allocate_address(subnet.cidr)
    cloud._save(on.id, private_ip=ip, details={**on.details, "net": {"subnet_id": subnet.id, "ip": ip}})
    find = lookup(cloud.store, "us-east-1", key_lookup(cloud.keypairs))
    md = find(ip)
    assert (md["instance_id"], md["local_ipv4"], md["subnet_id"], md["vpc_id"], md["mac"]) == (
        on.id, ip, subnet.id, subnet.vpc_id, eni.mac)
    assert md["user_data"] == "hi" and md["availability_zone"] == subnet.zone and md["account_id"] == alice.id
    assert find(off.private_ip or "172.17.0.2") is None, "an instance on Docker's own network is not answered"
    cloud.terminate_instance(alice, on.id)
    assert find(ip) is None, "nor a terminated one"


def test_explain_renders_the_path_with_counters():
    from api.web.layers import vpc_path

    assert vpc_path(None) == []
    lines = dict(vpc_path({
        "interface": "veth1", "interface_kind": "veth", "ip": "10.0.0.4", "mac": "0e:00:00:00:00:01",
        "bridge": "pcb-0123", "subnet": "subnet-1", "vpc": "vpc-1", "table": "pc-x", "chains": ["out-i", "in-i"],
        "nat": "outbound through the host (masquerade)",
        "groups": [{"id": "sg-1", "rules": [{"direction": "ingress", "rule": "tcp 80 0.0.0.0/0", "packets": 7,
                                             "bytes": 420}]}],
        "dropped": {"ingress": {"packets": 3}, "egress": {"packets": 0}},
        "forwards": [{"host": "127.0.0.1:20001", "guest": 80, "protocol": "tcp", "packets": 2}]}))
    assert "veth1 (veth" in lines["network path"] and "pcb-0123" in lines["network path"]
    assert lines["sg-1 ingress"] == "tcp 80 0.0.0.0/0: 7 packets, 420 bytes"
    assert lines["dropped by its groups"] == "in 3, out 0 packets"
    assert lines["forward (kernel DNAT)"] == "127.0.0.1:20001 → 10.0.0.4:80/tcp: 2 packets"
