"""The desired-state checks and the nftables ruleset built from them (pure, no kernel)."""
import json

import pytest

from emulator.errors import InvalidParameter
from emulator.networks import rules
from emulator.networks.dhcp import Dhcp, Reservation
from emulator.networks.model import Desired, Forward, Group, Port, Rule, Subnet, Vpc, bridge_name

V1, V2 = "vpc-00000000000000001", "vpc-00000000000000002"
S1, S2 = "subnet-a0000000000000001", "subnet-b0000000000000002"
WEB, DB = "sg-00000000000000001", "sg-00000000000000002"
I1, I2 = "i-00000000000000001", "i-00000000000000002"


def state(**over) -> Desired:
    base = dict(
        vpcs=(Vpc(V1, "10.90.0.0/16"), Vpc(V2, "10.91.0.0/16", nat=False)),
        subnets=(Subnet(S1, V1, "10.90.1.0/24"), Subnet(S2, V2, "10.91.1.0/24")),
        groups=(Group(WEB, V1, ingress=(Rule("tcp", 80, 80, peer_cidr="0.0.0.0/0"),),
                      egress=(Rule("all", peer_cidr="0.0.0.0/0"),)),
                Group(DB, V1, ingress=(Rule("tcp", 5432, 5432, peer_group=WEB),))),
        ports=(Port(I1, S1, "10.90.1.4", "02:00:00:00:00:01", (WEB,), "veth1"),
               Port(I2, S1, "10.90.1.5", "02:00:00:00:00:02", (DB,), None)),
        forwards=(Forward(2222, "10.90.1.4", 22),), imds_port=8999)
    base.update(over)
    return Desired(**base).check()


def exprs(table) -> str:
    return json.dumps([[c, e] for c, e, _ in table.rules])


def test_names_fit_the_kernel():
    assert bridge_name(S1) == "pcb-a0000000000" and len(bridge_name(S1)) == 15
    assert rules.table_name("abc123") == "pc-abc123"


def test_ruleset_shape():
    inet, bridge = rules.build("lbl", state())
    assert {"guard", "forward", "input", "nat-pre", "nat-out", "nat-post", V1, V2,
            f"out-{I1}", f"in-{I1}", f"{WEB}-in", f"{WEB}-out", f"{DB}-in"} <= set(inet.chains)
    assert inet.elements["egress"] == [["10.90.1.4", {"jump": {"target": f"out-{I1}"}}],
                                       ["10.90.1.5", {"jump": {"target": f"out-{I2}"}}]]
    assert inet.elements[f"members-{WEB}"] == ["10.90.1.4"]
    # the VPC without NAT drops what leaves it, and gets no masquerade
    assert f"drop-outbound-{V2}" in inet.counters and f"outbound-{V1}" in inet.counters
    assert "10.91.0.0" not in json.dumps([e for c, e, _ in inet.rules if c == "nat-post"])
    # egress rules continue to the VPC's dispatch chain; ingress rules accept
    assert {"goto": {"target": V1}} in next(e for c, e, _ in inet.rules if c == f"{WEB}-out")
    assert {"accept": None} in next(e for c, e, _ in inet.rules if c == f"{WEB}-in")
    # only pinned ports are in the pin sets, but every instance address is reserved
    assert bridge.elements["ports"] == ["veth1"]
    assert bridge.elements["addrs"] == ["10.90.1.4", "10.90.1.5"]
    assert "dnat" in exprs(inet) and '"port": 8999' in exprs(inet)


def test_the_cloud_endpoint_answers_on_each_gateway_and_nothing_else():
    """With an API port, each subnet's own gateway:port (and no other address or port) is DNATed to
    127.0.0.1:port and accepted in input; the guard (prio -300) sees the gateway address, so it
    runs before the DNAT (-100) rewrites it to loopback."""
    inet, _ = rules.build("lbl", state(api_port=4566))
    pre = [e for c, e, _ in inet.rules if c == "nat-pre" and '"endpoint"' in json.dumps(e)]
    assert len(pre) == 2  # one per subnet
    for e, (bridge, gw) in zip(pre, [(bridge_name(S1), "10.90.1.1"), (bridge_name(S2), "10.91.1.1")]):
        rights = [m["match"]["right"] for m in e if "match" in m]
        assert rights == [bridge, gw, "tcp", 4566]
        assert e[-1] == {"dnat": {"family": "ip", "addr": "127.0.0.1", "port": 4566}}
    accepts = [e for c, e, _ in inet.rules if c == "input" and {"accept": None} in e]
    ports = [m["match"]["right"] for e in accepts for m in e if "match" in m and
             m["match"]["left"] == {"payload": {"protocol": "tcp", "field": "dport"}}]
    assert sorted(ports) == [4566, 8999]  # the endpoint and the metadata listener, no other TCP port
    dnat_only = next(e for e in accepts if "4566" in json.dumps(e))
    assert {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}} in dnat_only
    assert inet.chains["guard"]["prio"] < inet.chains["nat-pre"]["prio"]
    without, _ = rules.build("lbl", state())
    assert '"endpoint"' not in json.dumps(without.rules) and "endpoint" not in without.counters
    assert [e for c, e, _ in without.rules if c == "input" and "4566" in json.dumps(e)] == []


def test_rule_counters_are_stable_across_reordering():
    a, b = Rule("tcp", 22, 22, peer_cidr="10.0.0.0/8"), Rule("udp", 53, 53, peer_cidr="0.0.0.0/0")
    g1, g2 = Group(WEB, V1, ingress=(a, b)), Group(WEB, V1, ingress=(b, a))
    assert rules.counter_name(WEB, "in", a) == rules.counter_name(g2.id, "in", g2.ingress[1])
    assert Rule("tcp", 22, 22, peer_cidr="10.1.2.3/8").peer_cidr == "10.0.0.0/8"
    assert g1.ingress == Group(WEB, V1, ingress=(a, b, a)).ingress  # duplicates collapse


def test_l4_matches():
    assert rules.l4(Rule("all", peer_cidr="0.0.0.0/0")) == []
    tcp = json.dumps(rules.l4(Rule("tcp", 1000, 2000, peer_cidr="0.0.0.0/0")))
    assert '"range": [1000, 2000]' in tcp
    icmp = rules.l4(Rule("icmp", 3, 4, peer_cidr="0.0.0.0/0"))
    assert [m["match"]["right"] for m in icmp] == ["icmp", 3, 4]


@pytest.mark.parametrize("bad", [
    dict(protocol="gre", peer_cidr="0.0.0.0/0"),
    dict(protocol="tcp", from_port=0, to_port=80, peer_cidr="0.0.0.0/0"),
    dict(protocol="tcp", from_port=90, to_port=80, peer_cidr="0.0.0.0/0"),
    dict(protocol="tcp", from_port=80, to_port=80),
    dict(protocol="tcp", from_port=80, to_port=80, peer_cidr="0.0.0.0/0", peer_group=WEB),
    dict(protocol="tcp", from_port=80, to_port=80, peer_cidr="10.0.0.0"),
    dict(protocol="tcp", from_port=80, to_port=80, peer_cidr="0.0.0.0/0; drop"),
    dict(protocol="icmp", from_port=-1, to_port=3, peer_cidr="0.0.0.0/0"),
    dict(protocol="all", peer_group="sg-x; flush ruleset"),
])
def test_bad_rules(bad):
    with pytest.raises(InvalidParameter):
        Rule(**bad)


@pytest.mark.parametrize("change", [
    dict(subnets=(Subnet(S1, "vpc-000000000000000ff", "10.90.1.0/24"),)),        # unknown VPC
    dict(subnets=(Subnet(S1, V1, "10.92.1.0/24"),)),                              # outside its VPC
    dict(ports=(Port(I1, S1, "10.90.2.4", "02:00:00:00:00:01", (WEB,)),)),        # outside its subnet
    dict(ports=(Port(I1, S1, "10.90.1.1", "02:00:00:00:00:01", (WEB,)),)),        # the gateway
    dict(ports=(Port(I1, S1, "10.90.1.4", "02:00:00:00:00:01", ("sg-000000000000000ff",)),)),
    dict(ports=(Port(I1, S1, "10.90.1.4", "02:00:00:00:00:01"), Port(I2, S1, "10.90.1.4", "02:00:00:00:00:02"))),
    dict(forwards=(Forward(2222, "10.90.1.99", 22),)),                            # to no instance
    dict(forwards=(Forward(2222, "10.90.1.4", 22), Forward(2222, "10.90.1.5", 22))),
    dict(groups=(Group(WEB, V1, ingress=(Rule("all", peer_group=DB),)),)),        # unknown group
    dict(vpcs=(Vpc(V1, "10.90.0.0/16"), Vpc(V2, "10.90.128.0/17"))),              # overlapping VPCs
    dict(api_port=0), dict(api_port=70000),                                        # no port
])
def test_inconsistent_states_are_refused(change):
    with pytest.raises(InvalidParameter):
        state(**change)


@pytest.mark.parametrize("bad", [
    lambda: Port("i-1", S1, "10.90.1.4", "02:00:00:00:00:01"),
    lambda: Port(I1, S1, "10.90.1.4", "01:00:00:00:00:01"),       # multicast MAC
    lambda: Port(I1, S1, "10.90.1.4", "02:00:00:00:00:01", (), "veth;rm"),
    lambda: Port(I1, S1, "10.90.1.4", "02:00:00:00:00:01", (), "a-very-long-interface"),
    lambda: Subnet("subnet-../../x", V1, "10.90.1.0/24"),
    lambda: Forward(0, "10.90.1.4", 22),
    lambda: Forward(22, "10.90.1.4", 22, protocol="sctp"),
])
def test_values_that_would_reach_the_kernel_are_validated(bad):
    with pytest.raises(InvalidParameter):
        bad()


def test_dhcp_config_has_reservations_only(tmp_path):
    sub = Subnet(S1, V1, "10.90.1.0/24")
    text = Dhcp("lbl", sub, tmp_path).config([Reservation("02:00:00:00:00:02", "10.90.1.5", "ip-10-90-1-5"),
                                              Reservation("02:00:00:00:00:01", "10.90.1.4", "web")])
    assert "dhcp-range=10.90.1.0,static,255.255.255.0,infinite" in text
    assert text.index("10.90.1.4") < text.index("10.90.1.5")
    assert f"interface={sub.bridge}" in text and "port=0" in text
    for bad in [("02:00:00:00:00:01", "10.90.2.4", "x"), ("02:00:00:00:00:01", "10.90.1.4", "a\ndhcp-script=/x")]:
        with pytest.raises(InvalidParameter):
            Dhcp("lbl", sub, tmp_path).config([Reservation(*bad)])
    with pytest.raises(InvalidParameter):
        Dhcp("lbl", sub, tmp_path).config([Reservation("02:00:00:00:00:01", "10.90.1.4", "a"),
                                           Reservation("02:00:00:00:00:01", "10.90.1.6", "b")])
