"""One account cannot take the server down (issue 11 items 5, 6, 9): exec output caps and
kills, exec slots, console tails read from the end, security-group caps, the forward range."""
from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from api.errors import rest_error, status_for
from emulator.compute.execio import Capped, descendants, kill_tree
from emulator.compute.libvirt.guest import tail_lines
from emulator.config import Config
from emulator.errors import InvalidParameter, QuotaExceeded, Throttled
from emulator.instances import MAX_FORWARDS, KeyedLocks, Slots
from emulator.security_groups import egress_rule, rule
from emulator.services import Cloud
from tests.fakes import FakeDriver


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none", forward_ports=(23000, 23099),
                     max_rules_per_group=5),
              drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    return c


def test_capped_keeps_the_first_bytes_and_counts_the_rest():
    c = Capped(10)
    for chunk in (b"0123", None, b"456789ab", b"cdef"):
        c.add(chunk)
    assert (c.text(), c.dropped, c.truncated) == ("0123456789", 6, True)
    exact = Capped(4)
    exact.add(b"abcd")
    assert exact.text() == "abcd" and not exact.truncated


def test_slots_refuse_past_the_account_share_and_the_total_and_forget_idle_keys():
    slots = Slots(per_key=2, total=3)
    with slots.hold("a"), slots.hold("a"):
        with pytest.raises(Throttled, match="2 execs of this account") as err:
            with slots.hold("a"):
                pass
        assert err.value.code == "RequestLimitExceeded"
        with slots.hold("b"):
            with pytest.raises(Throttled, match="on this server"):
                with slots.hold("c"):
                    pass
        assert len(slots) == 1, "b left: its key is gone"
    assert len(slots) == 0
    with pytest.raises(RuntimeError):
        with slots.hold("a"):
            raise RuntimeError("released on error too")
    assert len(slots) == 0


def test_throttled_is_429_in_rest_and_aws_throttling_elsewhere():
    exc = Throttled("busy", code="RequestLimitExceeded")
    assert [status_for(exc, p) for p in ("rest", "ec2", "s3", "json", "query")] == [429, 503, 503, 400, 400]
    assert '"RequestLimitExceeded"' in rest_error(exc)[0]


def test_keyed_locks_are_dropped_by_every_cloud_operation(cloud):
    alice, _ = cloud.accounts.create("alice")
    inst = cloud.run_instance(alice, image="tiny")
    cloud.exec_command(alice, inst.id, ["true"])
    cloud.stop_instance(alice, inst.id)
    cloud.terminate_instance(alice, inst.id)
    cloud.run_instances(alice, count=2, client_token="tok", image="tiny")
    sg = cloud.security_groups.create(alice.id, "w", "w")
    cloud.authorize_ingress(alice, sg.id, [rule("tcp", 80, 80)])
    assert len(cloud._locks) == 0 and len(cloud._exec_slots) == 0
    assert isinstance(cloud._locks, KeyedLocks)


def test_tail_reads_whole_last_lines_from_the_end(tmp_path):
    log = tmp_path / "console.log"
    with open(log, "wb") as f:
        f.truncate(3 * 1024 ** 3)  # 3 GiB of sparse zeros before the lines: never read
        f.seek(0, 2)
        f.write(b"\n" + b"".join(b"line %d\n" % i for i in range(5000)))
    assert tail_lines(log, 3) == "line 4997\nline 4998\nline 4999\n"
    assert tail_lines(log, 1) == "line 4999\n"
    no_newline = tmp_path / "b.log"
    no_newline.write_bytes(b"a\nb\nc")
    assert tail_lines(no_newline, 2) == "b\nc\n" and tail_lines(no_newline, 10) == "a\nb\nc\n"
    long = tmp_path / "c.log"
    long.write_bytes(b"x" * 5000 + b"\nshort\n")
    assert tail_lines(long, 5, max_bytes=100) == "short\n", "a line cut by the byte cap is not shown"
    (tmp_path / "empty.log").write_bytes(b"")
    assert tail_lines(tmp_path / "empty.log", 5) == ""


def test_kill_tree_kills_a_process_and_what_it_started():
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & (sleep 300; true) & wait"])
    try:
        for _ in range(100):
            if len(descendants(proc.pid)) >= 3:
                break
            time.sleep(0.05)
        tree = descendants(proc.pid)
        assert len(tree) >= 3
        kill_tree(proc.pid)
        assert proc.wait(timeout=10) == -9
        for _ in range(100):
            alive = [p for p in tree if os.path.exists(f"/proc/{p}") and
                     open(f"/proc/{p}/stat").read().split(")")[1].split()[0] != "Z"]
            if not alive:
                break
            time.sleep(0.05)
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_forwards_come_from_the_configured_range_only(cloud):
    alice, _ = cloud.accounts.create("alice")
    inst = cloud.run_instance(alice, image="tiny", ports=[80, 81])
    assert all(23000 <= p["host"] <= 23099 for p in inst.ports)
    with pytest.raises(InvalidParameter, match="outside this cloud's forward range 23000-23099"):
        cloud.run_instance(alice, image="tiny", ports=[{"guest": 80, "host": 8080}])
    assert len(cloud.describe_instances(alice)) == 1, "the refused launch left no record"
    ok = cloud.run_instance(alice, image="tiny", ports=[{"guest": 80, "host": 23050}])
    assert ok.ports[0]["host"] == 23050


@pytest.mark.parametrize("bad", ["80-90", "1023-2000", "3000-2000", "20000-70000", "abc", "20000"])
def test_a_forward_range_below_1024_or_malformed_is_refused(bad, monkeypatch):
    monkeypatch.setenv("POCKETCLOUD_FORWARD_PORTS", bad)
    with pytest.raises(ValueError, match="range"):
        Config()


def test_rules_per_group_are_capped_both_ways_and_a_refusal_changes_nothing(cloud):
    alice, _ = cloud.accounts.create("alice")
    sg = cloud.security_groups.create(alice.id, "web", "w")
    cloud.authorize_ingress(alice, sg.id, [rule("tcp", p, p) for p in (1, 2, 3, 4)])
    with pytest.raises(QuotaExceeded) as err:
        cloud.authorize_ingress(alice, sg.id, [rule("tcp", 5, 5), rule("tcp", 6, 6)])
    assert err.value.code == "RulesPerSecurityGroupLimitExceeded"
    assert len(cloud.security_groups.get(alice.id, sg.id).rules) == 4
    cloud.authorize_ingress(alice, sg.id, [rule("tcp", 5, 5)])
    # egress starts with allow-all: four more fit, the fifth does not
    cloud.security_groups.authorize_egress(alice.id, sg.id, [egress_rule("tcp", p, p) for p in (1, 2, 3, 4)])
    with pytest.raises(QuotaExceeded, match="outbound"):
        cloud.security_groups.authorize_egress(alice.id, sg.id, [egress_rule("udp", 9, 9)])


def test_rule_changes_cannot_give_an_instance_more_forwards_than_a_launch(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    alice, _ = c.accounts.create("alice")
    a, b = c.security_groups.create(alice.id, "a", "a"), c.security_groups.create(alice.id, "b", "b")
    c.authorize_ingress(alice, a.id, [rule("tcp", 1000, 1019)])
    inst = c.run_instance(alice, image="tiny", ports=[80, 81], security_groups=[a.id, b.id])
    assert len(inst.ports) == 22
    with pytest.raises(QuotaExceeded) as err:
        c.authorize_ingress(alice, b.id, [rule("tcp", 2000, 2010)])  # 22 + 11 > 32
    assert err.value.code == "ForwardedPortLimitExceeded" and inst.id in err.value.message
    assert c.security_groups.get(alice.id, b.id).rules == () and len(c.get_instance(alice, inst.id).ports) == 22
    c.authorize_ingress(alice, b.id, [rule("tcp", 2000, 2009)])  # exactly 32
    assert len(c.get_instance(alice, inst.id).ports) == MAX_FORWARDS
    # widening a rule in place is a rule change too
    rid = c.security_groups.get(alice.id, b.id).rules[0].id
    with pytest.raises(QuotaExceeded):
        c.modify_security_group_rules(alice, b.id, {rid: rule("tcp", 2000, 2010)})
    assert c.security_groups.get(alice.id, b.id).rules[0].to_port == 2009
    # rules of an unused group are not limited by instances
    c.terminate_instance(alice, inst.id)
    c.authorize_ingress(alice, b.id, [rule("tcp", 3000, 3031)])


def test_concurrent_rule_changes_cannot_pass_the_forward_cap_together(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    alice, _ = c.accounts.create("alice")
    groups = [c.security_groups.create(alice.id, f"g{i}", "g") for i in range(4)]
    inst = c.run_instance(alice, image="tiny", security_groups=[g.id for g in groups])
    errors = []

    def add(i):
        try:
            c.authorize_ingress(alice, groups[i].id, [rule("tcp", 100 * (i + 1), 100 * (i + 1) + 9)])
        except QuotaExceeded as e:
            errors.append(e)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and len(c.get_instance(alice, inst.id).ports) == 30


def test_the_cli_names_a_bad_setting_instead_of_a_traceback(monkeypatch):
    from click.testing import CliRunner

    from api.cli import main

    monkeypatch.setenv("POCKETCLOUD_FORWARD_PORTS", "80-90")
    res = CliRunner().invoke(main, ["env"])
    assert res.exit_code == 2 and "forward ports 80-90" in res.output and "Traceback" not in res.output


def test_a_rule_change_racing_a_launch_cannot_take_it_past_the_forward_cap(tmp_path):
    """The launch has read its groups' rules (22 ports) but is not recorded yet while a rule
    change adds 11: one of them must see the other, never both pass (22 + 11 > 32)."""
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    alice, _ = c.accounts.create("alice")
    a, b = c.security_groups.create(alice.id, "a", "a"), c.security_groups.create(alice.id, "b", "b")
    c.authorize_ingress(alice, a.id, [rule("tcp", 1000, 1019)])
    in_preflight, go_on = threading.Event(), threading.Event()
    driver = c.driver("container")

    def slow_preflight(spec):
        in_preflight.set()
        go_on.wait(10)

    driver.preflight = slow_preflight
    launched, refused = [], []
    t = threading.Thread(target=lambda: launched.append(
        c.run_instance(alice, image="tiny", ports=[80, 81], security_groups=[a.id, b.id])))
    t.start()
    assert in_preflight.wait(10)

    def change():
        try:
            c.authorize_ingress(alice, b.id, [rule("tcp", 2000, 2010)])
        except QuotaExceeded as e:
            refused.append(e.code)

    r = threading.Thread(target=change)
    r.start()
    time.sleep(0.3)  # the rule change now waits for the launch (or, before the fix, passed it)
    go_on.set()
    t.join(10)
    r.join(10)
    [inst] = launched
    assert len(c.get_instance(alice, inst.id).ports) <= MAX_FORWARDS
    assert refused == ["ForwardedPortLimitExceeded"] and c.security_groups.get(alice.id, b.id).rules == ()
