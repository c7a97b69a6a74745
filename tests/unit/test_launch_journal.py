"""The launch journal and the asynchronous VM launch, over the fake driver: a dead server's
launch is adopted or rolled back, a live one's is never touched (issue 11, crash safety)."""
from __future__ import annotations

import threading
import time

import pytest

from emulator.compute.driver import EngineInstance, LaunchSpec
from emulator.config import Config
from emulator.errors import InvalidState
from emulator.services import Cloud
from tests.fakes import FakeDriver

HV = {"mode": "qemu", "domain_type": "qemu", "reason": "fake: configured"}


class GatedVm(FakeDriver):
    """A VM engine whose launch waits at its start step until the test opens the gate."""

    def __init__(self):
        super().__init__("vm", hypervisor=HV)
        self.gate, self.at_gate = threading.Event(), threading.Event()

    def launch(self, spec: LaunchSpec) -> EngineInstance:
        def held(step: str, engine_id: str) -> None:
            spec.on_step(step, engine_id)
            if step == "start":
                self.at_gate.set()
                assert self.gate.wait(10)
        return super().launch(LaunchSpec(**{**spec.__dict__, "on_step": held}))


def make_cloud(home, drivers=None) -> Cloud:
    c = Cloud(Config(home=home, recipes_dir=home.parent / "none"),
              drivers=drivers or {"container": FakeDriver(), "vm": FakeDriver("vm", hypervisor=HV)})
    if not c.images.list():
        c.images.register("tiny", "container", "fake:tiny", "test")
        c.images.register("tiny", "vm", "/fake/tiny", "test")
    return c


@pytest.fixture
def cloud(tmp_path):
    return make_cloud(tmp_path / "home")


def open_ops(cloud: Cloud) -> list:
    return cloud.store.query("SELECT * FROM operations WHERE finished_at IS NULL")


def test_a_vm_launch_answers_pending_then_runs_with_its_boot_phases(cloud):
    alice, _ = cloud.accounts.create("alice")
    vm = cloud.run_instance(alice, image="tiny", kind="vm")
    assert vm.state == "pending", "a VM launch answers at once"
    cloud.wait_for_launches()
    vm = cloud.get_instance(alice, vm.id)
    assert vm.state == "running" and vm.engine_id == "e-" + vm.id
    boot = vm.to_dict()["boot"]
    assert [p["name"] for p in boot["phases"]] == ["qemu-started"]  # the fake has no define/kernel steps
    assert boot["phase"] == "qemu-started" and boot["phases"][0]["at"].endswith("Z")
    assert boot["phases"][0]["elapsed"] >= 0
    assert not open_ops(cloud)
    ops = cloud.store.query("SELECT op, step, boot_id FROM operations WHERE instance_id=?", (vm.id,))
    assert [(o["op"], o["step"], o["boot_id"]) for o in ops] == [("launch", "start", cloud.journal.boot_id)]


def test_a_container_launch_stays_synchronous_and_has_no_boot_phases(cloud):
    alice, _ = cloud.accounts.create("alice")
    ct = cloud.run_instance(alice, image="tiny")
    assert ct.state == "running" and "boot" not in ct.to_dict()
    assert not open_ops(cloud)


def test_a_failed_vm_launch_ends_terminated_with_a_reason_and_leaves_nothing(cloud):
    alice, _ = cloud.accounts.create("alice")
    cloud.drivers["vm"].fail_launch = True
    vm = cloud.run_instance(alice, image="tiny", kind="vm")
    assert vm.state == "pending"
    cloud.wait_for_launches()
    vm = cloud.get_instance(alice, vm.id)
    assert vm.state == "terminated"
    assert vm.state_reason.startswith("Server.InternalError: the launch failed: (InternalError) boom")
    assert cloud.drivers["vm"].objects == {} and not open_ops(cloud)
    assert cloud.run_instance(alice, image="tiny").state == "running"  # the quota counts it no more


def test_terminate_while_a_vm_launches_wins_and_the_engine_object_goes(tmp_path):
    vm_driver = GatedVm()
    cloud = make_cloud(tmp_path / "home", {"container": FakeDriver(), "vm": vm_driver})
    alice, _ = cloud.accounts.create("alice")
    vm = cloud.run_instance(alice, image="tiny", kind="vm")
    assert vm_driver.at_gate.wait(10)
    with pytest.raises(InvalidState, match="still launching"):
        cloud.stop_instance(alice, vm.id)
    assert not any(cloud.reconcile().values()), "a live launch is never touched by a reconcile pass"
    inst, prev = cloud.terminate_instance(alice, vm.id)
    assert (inst.state, prev) == ("terminated", "pending")
    vm_driver.gate.set()
    cloud.wait_for_launches()
    assert cloud.get_instance(alice, vm.id).state == "terminated"
    assert vm_driver.objects == {}, "the launch that finished after the terminate removed its object"
    assert not open_ops(cloud)


def _die_mid_launch(cloud: Cloud, inst_id: str, step: str, keep_engine_object: bool) -> None:
    """What a kill -9 at STEP leaves: a pending record without engine id, the launch's journal
    row open under the dead server's boot id, the engine object (or not)."""
    eid = cloud._row(inst_id).engine_id
    drv = cloud.driver(cloud._row(inst_id).kind)
    if not keep_engine_object:
        drv.objects.pop(eid)
    with cloud.store.tx() as c:
        c.execute("UPDATE instances SET state='pending', engine_id=NULL WHERE id=?", (inst_id,))
        c.execute("UPDATE operations SET finished_at=NULL, boot_id='dead', step=? WHERE instance_id=?",
                  (step, inst_id))


def test_a_dead_servers_launch_is_adopted_when_the_engine_runs_it(tmp_path):
    old = make_cloud(tmp_path / "home")
    alice, _ = old.accounts.create("alice")
    ct = old.run_instance(alice, image="tiny", ports=[{"guest": 80}])
    _die_mid_launch(old, ct.id, "start", keep_engine_object=True)
    new = make_cloud(tmp_path / "home", old.drivers)  # a restarted server: a new boot id
    assert new.journal.boot_id != old.journal.boot_id
    report = new.reconcile()
    assert report["adopted"] == [ct.id] and not report["rolled_back"]
    inst = new.get_instance(alice, ct.id)
    assert (inst.state, inst.engine_id) == ("running", "e-" + ct.id)
    assert ("set_forwards", "e-" + ct.id) in new.drivers["container"].calls, "its forwards are applied again"
    assert not open_ops(new)
    assert not any(new.reconcile().values()), "one pass settles it"


@pytest.mark.parametrize("step", ["record", "engine-create"])
def test_a_dead_servers_launch_is_rolled_back_when_the_engine_has_nothing_running(tmp_path, step):
    old = make_cloud(tmp_path / "home")
    alice, _ = old.accounts.create("alice", max_instances=1)
    ct = old.run_instance(alice, image="tiny")
    _die_mid_launch(old, ct.id, step, keep_engine_object=step != "record")
    if step == "engine-create":  # created, never started
        old.drivers["container"].objects["e-" + ct.id]["state"] = "pending"
    new = make_cloud(tmp_path / "home", old.drivers)
    report = new.reconcile()
    assert report["rolled_back"] == [ct.id]
    inst = new.get_instance(alice, ct.id)
    assert inst.state == "terminated"
    assert inst.state_reason.startswith("Server.InternalError: the server stopped during this launch")
    assert ("remove_leftovers", ct.id) in new.drivers["container"].calls
    assert new.drivers["container"].objects == {}
    assert not open_ops(new)
    assert new.run_instance(alice, image="tiny").state == "running", "the quota freed its place"


def test_a_live_servers_pending_launch_is_left_alone_however_old(cloud):
    alice, _ = cloud.accounts.create("alice")
    ct = cloud.run_instance(alice, image="tiny")
    _die_mid_launch(cloud, ct.id, "record", keep_engine_object=False)
    with cloud.store.tx() as c:  # this server's own, an hour old: no grace guess decides
        c.execute("UPDATE operations SET boot_id=? WHERE instance_id=?", (cloud.journal.boot_id, ct.id))
        c.execute("UPDATE instances SET created_at=? WHERE id=?", (time.time() - 3600, ct.id))
    assert not any(cloud.reconcile().values())
    assert cloud.get_instance(alice, ct.id).state == "pending"


def test_a_dead_servers_terminate_is_finished(tmp_path):
    old = make_cloud(tmp_path / "home")
    alice, _ = old.accounts.create("alice")
    ct = old.run_instance(alice, image="tiny")
    with old.store.tx() as c:
        c.execute("UPDATE instances SET state='shutting-down' WHERE id=?", (ct.id,))
    old.journal.open(ct.id, "terminate")
    old.journal.boot_id = "gone"  # what the restart changes
    new = make_cloud(tmp_path / "home", old.drivers)
    assert new.reconcile()["terminated"] == [ct.id]
    assert new.get_instance(alice, ct.id).state == "terminated"
    assert new.drivers["container"].objects == {} and not open_ops(new)


def test_a_dead_servers_stop_ends_in_the_engines_state(tmp_path):
    old = make_cloud(tmp_path / "home")
    alice, _ = old.accounts.create("alice")
    ct = old.run_instance(alice, image="tiny")
    old.drivers["container"].objects["e-" + ct.id]["state"] = "stopped"  # the engine got the stop
    with old.store.tx() as c:
        c.execute("UPDATE instances SET state='stopping' WHERE id=?", (ct.id,))
    old.journal.open(ct.id, "stop")
    old.journal.boot_id = "gone"
    new = make_cloud(tmp_path / "home", old.drivers)
    assert new.reconcile()["stopped"] == [ct.id]
    assert new.get_instance(alice, ct.id).state == "stopped" and not open_ops(new)


def test_a_pending_record_from_before_the_journal_waits_for_the_grace_then_is_settled(cloud):
    alice, _ = cloud.accounts.create("alice")
    ct = cloud.run_instance(alice, image="tiny")
    cloud.drivers["container"].objects.clear()
    with cloud.store.tx() as c:
        c.execute("UPDATE instances SET state='pending', engine_id=NULL WHERE id=?", (ct.id,))
        c.execute("DELETE FROM operations WHERE instance_id=?", (ct.id,))
    assert not any(cloud.reconcile().values()), "young: maybe still launching in an older server"
    with cloud.store.tx() as c:
        c.execute("UPDATE instances SET created_at=? WHERE id=?", (time.time() - 3600, ct.id))
    assert cloud.reconcile()["rolled_back"] == [ct.id]
