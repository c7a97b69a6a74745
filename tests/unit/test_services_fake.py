"""Service rules with a fake driver: rollback, ownership, transitions, reconcile."""
from __future__ import annotations

import pytest

from emulator.compute.driver import EngineInstance
from emulator.config import Config
from emulator.errors import EngineError, InvalidParameter, InvalidState, NotFound, QuotaExceeded
from emulator.services import Cloud


class FakeDriver:
    kind = "container"

    def __init__(self):
        self.objects: dict[str, dict] = {}
        self.fail_launch = False

    def available(self):
        return True, "fake"

    def info(self):
        return {}

    def launch(self, spec):
        if self.fail_launch:
            raise EngineError("boom")
        self.objects["e-" + spec.instance_id] = {"id": spec.instance_id, "state": "running", "ports": spec.ports}
        return self.inspect("e-" + spec.instance_id)

    def inspect(self, engine_id):
        o = self.objects.get(engine_id)
        return EngineInstance(engine_id, o["state"], o["ports"]) if o else None

    def start(self, engine_id):
        self.objects[engine_id]["state"] = "running"
        return self.inspect(engine_id)

    def stop(self, engine_id, timeout):
        self.objects[engine_id]["state"] = "stopped"
        return self.inspect(engine_id)

    def reboot(self, engine_id, timeout):
        return self.inspect(engine_id)

    def terminate(self, engine_id):
        self.objects.pop(engine_id, None)

    def list_managed(self, label):
        return {o["id"]: eid for eid, o in self.objects.items()}


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    return c


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
    fake.objects["e-orphan"] = {"id": "i-00000000000000000", "state": "running", "ports": ()}
    report = cloud.reconcile()
    assert report["terminated"] == [a.id] and report["stopped"] == [b.id]
    assert report["orphans_removed"] == ["i-00000000000000000"]
    assert cloud.get_instance(alice, a.id).state_reason.startswith("Server.EngineRemoved")


def test_terminated_instances_are_forgotten_after_the_ttl(tmp_path):
    c = Cloud(Config(home=tmp_path / "h", recipes_dir=tmp_path / "none", terminated_ttl=0),
              drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    admin = c.bootstrap()
    inst = c.run_instance(admin, image="tiny")
    c.terminate_instance(admin, inst.id)
    assert c.describe_instances(admin) == []
