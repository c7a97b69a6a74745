"""Service rules with the shared fake driver: rollback, ownership, transitions, reconcile."""
from __future__ import annotations

import threading
import time

import pytest

from emulator.billing.probes import EngineProbe
from emulator.compute.driver import Driver, Usage
from emulator.compute.engines import build_drivers
from emulator.config import Config
from emulator.errors import EngineError, InvalidParameter, InvalidState, NotFound, QuotaExceeded
from emulator.instances import KeyedLocks
from emulator.security_groups import rule
from emulator.services import Cloud
from tests.fakes import FakeDriver

HV = {"mode": "qemu", "domain_type": "qemu", "reason": "fake: configured"}


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"),
              drivers={"container": FakeDriver(), "vm": FakeDriver("vm", hypervisor=HV)})
    c.images.register("tiny", "container", "fake:tiny", "test")
    c.images.register("tiny", "vm", "/fake/tiny", "test")
    return c


def test_every_driver_is_a_complete_driver(tmp_path):
    """The fake and the real drivers implement the whole protocol (built without engines:
    drivers connect on first use)."""
    real = build_drivers(Config(home=tmp_path / "h"))
    assert {d.name for d in real.values()} == {"docker", "libvirt"}
    for d in [FakeDriver(), *real.values()]:
        assert isinstance(d, Driver), type(d)
        assert not getattr(type(d), "__abstractmethods__", None), type(d)
    assert real["container"].hypervisor() is None  # containers have no hypervisor: the default says so


def test_the_meter_reads_a_vms_usage_through_the_driver(cloud):
    alice, _ = cloud.accounts.create("alice")
    vm = cloud.run_instance(alice, image="tiny", kind="vm")
    cloud.wait_for_launches()  # a VM launch answers pending; the engine half runs in a worker
    vm = cloud.get_instance(alice, vm.id)
    probe = EngineProbe(cloud.drivers)
    assert probe.sample("vm", vm.engine_id) is None, "no figures from the engine, no sample"
    cloud.drivers["vm"].objects[vm.engine_id]["usage"] = Usage(cpu_ns=7, mem_bytes=2**20, tx_bytes=None)
    s = probe.sample("vm", vm.engine_id)
    assert (s.cpu_ns, s.mem_bytes, s.tx_bytes) == (7, 2**20, None)
    cloud.stop_instance(alice, vm.id)
    assert probe.sample("vm", vm.engine_id) is None, "a stopped VM uses nothing"


def test_failed_launch_leaves_no_record(cloud):
    admin = cloud.bootstrap()
    cloud.drivers["container"].fail_launch = True
    with pytest.raises(EngineError):
        cloud.run_instance(admin, image="tiny", ports=[{"guest": 80}])
    assert cloud.describe_instances(admin) == []


def test_ownership_and_transitions(cloud):
    admin = cloud.bootstrap()
    alice, _ = cloud.accounts.create("alice")
    inst = cloud.run_instance(alice, image="tiny", ports=[{"guest": 22}])
    assert inst.ports[0]["host"] >= 20000
    assert inst.to_dict()["engine"] == {"name": "docker", "id": inst.engine_id}
    with pytest.raises(NotFound):
        cloud.get_instance(admin, inst.id)
    assert cloud.stop_instance(alice, inst.id)[0].state == "stopped"
    with pytest.raises(InvalidState):
        cloud.reboot_instance(alice, inst.id)
    assert cloud.start_instance(alice, inst.id)[0].state == "running"
    term, prev = cloud.terminate_instance(alice, inst.id)
    assert (term.state, prev) == ("terminated", "running")
    assert cloud.terminate_instance(alice, inst.id)[1] == "terminated"  # idempotent, as on EC2
    with pytest.raises(InvalidState):
        cloud.start_instance(alice, inst.id)
    assert len(cloud._locks) == 0, "per-instance locks are released once unused"


def test_another_account_changes_nothing_on_the_engine(cloud):
    alice, _ = cloud.accounts.create("alice")
    bob, _ = cloud.accounts.create("bob")
    inst = cloud.run_instance(alice, image="tiny", kind="vm")
    cloud.wait_for_launches()
    fake = cloud.drivers["vm"]
    before = (list(fake.calls), {k: dict(v) for k, v in fake.objects.items()})
    for action in (cloud.start_instance, cloud.stop_instance, cloud.reboot_instance, cloud.terminate_instance,
                   cloud.console_output, cloud.instance_internals):
        with pytest.raises(NotFound) as e:
            action(bob, inst.id)
        assert e.value.code == "InvalidInstanceID.NotFound"
    with pytest.raises(NotFound):
        cloud.exec_command(bob, inst.id, "true")
    assert (fake.calls, fake.objects) == before


def test_a_vm_records_its_hypervisor_and_info_reports_it(cloud):
    alice, _ = cloud.accounts.create("alice")
    vm = cloud.run_instance(alice, image="tiny", kind="vm")
    ct = cloud.run_instance(alice, image="tiny")
    assert vm.to_dict()["hypervisor"] == {"mode": "qemu", "reason": "fake: configured"}
    assert "hypervisor" not in ct.details and "hypervisor" not in ct.to_dict()
    assert cloud.hypervisor_info() == HV
    assert cloud.info()["engines"]["vm"]["engine"] == "fake"


def test_client_token_replays_a_launch_and_refuses_other_parameters(cloud):
    carol, _ = cloud.accounts.create("carol")
    rid, first = cloud.run_instances(carol, count=1, client_token="tok-1", image="tiny", type="t2.nano")
    again, same = cloud.run_instances(carol, count=1, client_token="tok-1", image="tiny", type="t2.nano")
    assert (again, [i.id for i in same]) == (rid, [i.id for i in first])
    for other in ({"count": 2, "type": "t2.nano"}, {"count": 1, "type": "t2.micro"},
                  {"count": 1, "type": "t2.nano", "user_data": "#!/bin/sh\n"}):
        with pytest.raises(InvalidParameter) as e:
            cloud.run_instances(carol, client_token="tok-1", image="tiny", **other)
        assert e.value.code == "IdempotentParameterMismatch"
    assert len(cloud.describe_instances(carol)) == 1
    # another account's token is its own
    dave, _ = cloud.accounts.create("dave")
    assert cloud.run_instances(dave, count=1, client_token="tok-1", image="tiny", type="t2.micro")[0] != rid


def test_quota(cloud):
    bob, _ = cloud.accounts.create("bob", max_instances=1)
    cloud.run_instance(bob, image="tiny")
    with pytest.raises(QuotaExceeded):
        cloud.run_instance(bob, image="tiny")


def test_reconcile_marks_removed_and_stopped_and_removes_orphans(cloud):
    alice, _ = cloud.accounts.create("alice")
    a = cloud.run_instance(alice, image="tiny")
    b = cloud.run_instance(alice, image="tiny")
    fake = cloud.drivers["container"]
    fake.objects.pop(a.engine_id)
    fake.objects[b.engine_id]["state"] = "stopped"
    fake.objects["e-orphan"] = {"id": "i-00000000000000000", "state": "running", "ports": (), "forwards": ()}
    report = cloud.reconcile()
    assert report["terminated"] == [a.id] and report["stopped"] == [b.id]
    assert report["orphans_removed"] == ["i-00000000000000000"]
    assert "e-orphan" not in fake.objects
    assert cloud.get_instance(alice, a.id).state_reason.startswith("Server.EngineRemoved")
    assert cloud.get_instance(alice, b.id).state_reason.startswith("Server.EngineStopped")
    assert len(cloud._locks) == 0


def test_a_quiet_reconcile_pass_is_one_listing_per_engine(cloud):
    alice, _ = cloud.accounts.create("alice")
    for _ in range(3):
        cloud.run_instance(alice, image="tiny")
    cloud.run_instance(alice, image="tiny", kind="vm")
    cloud.wait_for_launches()
    for fake in cloud.drivers.values():
        fake.calls.clear()
    assert not any(cloud.reconcile().values())
    calls = [c for fake in cloud.drivers.values() for c in fake.calls]
    assert sorted(c[0] for c in calls) == ["list_managed", "list_managed"], calls


def test_reconcile_skips_an_engine_that_is_down_and_a_launch_in_flight(cloud):
    alice, _ = cloud.accounts.create("alice")
    inst = cloud.run_instance(alice, image="tiny")
    fake = cloud.drivers["container"]
    fake.up = False
    fake.objects.clear()
    assert not any(cloud.reconcile().values())
    assert cloud.get_instance(alice, inst.id).state == "running", "an engine that is down removes nothing"
    fake.up = True
    # A record being launched right now: pending, no engine id yet.
    cloud._save(inst.id, state="pending", engine_id=None)
    assert not any(cloud.reconcile().values())
    assert cloud.get_instance(alice, inst.id).state == "pending"


def test_restore_forwards_reapplies_a_containers_group_forwards(cloud):
    alice, _ = cloud.accounts.create("alice")
    sg = cloud.security_groups.create(alice.id, "web", "http")
    cloud.authorize_ingress(alice, sg.id, [rule("tcp", 80, 80)])
    inst = cloud.run_instance(alice, image="tiny", security_groups=[sg.id])
    fake = cloud.drivers["container"]
    assert [p.guest for p in fake.objects[inst.engine_id]["forwards"]] == [80]
    fake.objects[inst.engine_id]["forwards"] = ()  # a restarted server has no forward open
    cloud.restore_forwards()
    [fwd] = fake.objects[inst.engine_id]["forwards"]
    assert (fwd.guest, fwd.host) == (80, inst.ports[0]["host"]), "the same host port as before"


def test_keyed_locks_serialize_one_key_and_forget_it_afterwards():
    locks = KeyedLocks()
    inside, overlap = [], []

    def worker(key):
        with locks.hold(key):
            inside.append(key)
            if len([k for k in inside if k == key]) > 1:
                overlap.append(key)
            time.sleep(0.01)
            inside.remove(key)

    threads = [threading.Thread(target=worker, args=(f"k{i % 2}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == [] and len(locks) == 0
    with pytest.raises(RuntimeError):
        with locks.hold("x"):
            raise RuntimeError("released on error too")
    assert len(locks) == 0


def test_terminated_instances_are_forgotten_after_the_ttl(tmp_path):
    c = Cloud(Config(home=tmp_path / "h", recipes_dir=tmp_path / "none", terminated_ttl=0),
              drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    admin = c.bootstrap()
    inst = c.run_instance(admin, image="tiny")
    c.terminate_instance(admin, inst.id)
    assert c.describe_instances(admin) == []
