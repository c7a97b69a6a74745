"""Security groups and tenant isolation on the real kernel, namespaces as instances.

Every probe goes into the session's connectivity matrix (printed at the end and written to
artifacts/net-matrix.md)."""
from __future__ import annotations

import time

import pytest

from emulator.networks import ipam
from emulator.networks.model import Rule

from .lab import sh

pytestmark = pytest.mark.integration


def test_same_subnet_follows_ingress_rules_both_directions(lab):
    assert not lab.check("a_client", [("a_web", 80, True, "web: tcp 80 from 0.0.0.0/0"),
                                      ("a_web", 22, False, "web: no rule for 22"),
                                      ("a_db", 5432, False, "db: 5432 from group web only")])
    assert not lab.check("a_web", [("a_client", 80, False, "client: no ingress at all"),
                                   ("a_client", 22, False, "client: no ingress at all"),
                                   ("a_db", 5432, True, "db: 5432 from group web")])


def test_group_references_and_default_group_allow_from_itself(lab):
    assert not lab.check("a_def1", [("b_def2", 22, True, "default: all from itself (other subnet)"),
                                    ("b_def2", 5432, True, "default: all from itself (other subnet)")])
    assert not lab.check("b_def2", [("a_def1", 80, True, "default: all from itself")])
    assert not lab.check("a_client", [("a_def1", 22, False, "default: only members get in")])
    assert not lab.check("b_web", [("a_db", 5432, True, "db: from group web, member on another subnet")])


def test_two_subnets_of_one_vpc_reach_each_other_when_groups_allow(lab):
    # Both subnets are Docker bridges: only the DOCKER-USER chain lets this traffic through.
    assert not lab.check("a_client", [("b_web", 80, True, "web on the other subnet: tcp 80")])
    assert not lab.check("b_web", [("a_web", 80, True, "web: tcp 80 from 0.0.0.0/0"),
                                   ("a_client", 80, False, "client: no ingress")])


def test_two_vpcs_exchange_nothing_even_with_open_groups(lab):
    before = lab.fw.counters()["drop-isolation"]["packets"]
    assert not lab.check("c_open", [("a_web", 80, False, "other VPC (web allows 0.0.0.0/0:80)"),
                                    ("a_def1", 22, False, "other VPC")])
    assert not lab.check("a_web", [("c_open", 80, False, "other VPC (open allows all)"),
                                   ("c_open", 22, False, "other VPC (open allows all)")])
    assert lab.fw.counters()["drop-isolation"]["packets"] > before


def test_egress_rules_limit_what_an_instance_may_start(lab, outside):
    counters = lab.fw.counters()
    iid = lab.namespaces["a_locked"]["iid"]
    assert not lab.check("a_locked", [("a_web", 80, True, "locked: egress tcp 80 to its VPC")])
    assert not lab.check("a_locked", [("a_def1", 22, False, "locked: no egress for 22 (and no ingress)")])
    reply = lab.probe("a_locked", f"{outside['ip']}:80")[f"{outside['ip']}:80"]
    lab.matrix.append(("a_locked", "outside", 80, "locked: egress only to its VPC", False, reply is not None))
    assert reply is None
    assert lab.fw.counters()[f"drop-out-{iid}"]["packets"] > counters[f"drop-out-{iid}"]["packets"]


def test_icmp_rules(lab):
    def ping(src: str, dst: str) -> bool:
        return lab.ns_run(src, "busybox", "ping", "-c1", "-W1", lab.namespaces[dst]["ip"], check=False).returncode == 0

    cases = [("a_client", "a_web", True, "web: echo from its VPC"),
             ("c_open", "a_web", False, "other VPC"),
             ("a_web", "a_client", False, "client: no ingress"),
             ("a_locked", "a_web", False, "locked: egress is tcp 80 only (web's ingress would allow)")]
    for src, dst, expect, why in cases:
        got = ping(src, dst)
        lab.matrix.append((src, dst, "icmp echo", why, expect, got))
        assert got == expect, (src, dst, why)


def test_authorize_takes_effect_at_once_and_revoke_closes_new_connections(restore):
    lab = restore
    web, client = lab.names["web"], lab.names["client"]
    assert not lab.reach("a_client", "a_web", 22)
    rules = lab.groups[web.id].ingress
    lab.set_rules(web.id, ingress=[*rules, Rule("tcp", 22, 22, peer_group=client.id)])
    poller = lab.poller("a_client", "a_web", 22)  # already knocking, every ~20 ms
    t0 = time.time()
    summary = lab.apply()
    opened = lab.opened_at(poller)
    assert opened is not None, "the authorized port never opened"
    print(f"\nauthorize -> traffic: {(opened - t0) * 1000:.1f} ms (apply: {summary['seconds'] * 1000:.1f} ms, "
          f"{summary['rules']} rules, {summary['commands']} nft commands in one transaction)")
    lab.matrix.append(("a_client", "a_web", 22, "after authorize tcp 22 from group client", True, True))
    counter = next(r for r in lab.fw.group_counters(lab.groups[web.id]) if r["rule"].startswith("tcp 22"))
    assert counter["packets"] >= 1

    lab.set_rules(web.id, ingress=rules)
    summary = lab.apply()
    assert not lab.reach("a_client", "a_web", 22)
    print(f"revoke: apply {summary['seconds'] * 1000:.1f} ms, then new connections are refused")
    lab.matrix.append(("a_client", "a_web", 22, "after revoke", False, False))


def test_apply_is_idempotent_and_repairs_hand_edits(lab):
    first = lab.fw.ruleset()
    lab.apply()
    assert lab.fw.ruleset() == first
    # Someone deletes the whole inet table by hand: the next apply puts everything back.
    sh("nft", "delete", "table", "inet", f"pc-{lab.label}")
    assert lab.reach("a_client", "a_def1", 22)  # no table: nothing is filtered any more
    lab.apply()
    assert not lab.reach("a_client", "a_def1", 22)
    assert lab.reach("a_client", "a_web", 80)


def test_every_cloud_vpc_counts_as_taken_on_the_host(lab):
    """Another cloud picking a VPC block sees this lab's, even one without a subnet (no route)."""
    taken = ipam.host_taken_cidrs(lab.docker)
    assert {v.cidr for v in lab.vpcs.values()} <= taken
    fresh = ipam.allocate_vpc_cidr(taken, pool="10.64.0.0/10")
    assert all(not ipam.network(fresh).overlaps(ipam.network(v.cidr)) for v in lab.vpcs.values())
