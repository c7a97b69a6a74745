"""The Cloud entry points added for EC2 breadth, with a fake engine: placement recorded at
launch, stop-modify-start, and a rule change racing a termination."""
from __future__ import annotations

import pytest

from emulator import instance_attributes
from emulator.compute.driver import EngineInstance
from emulator.config import Config
from emulator.errors import InvalidParameter, InvalidState, NotFound
from emulator.placement import placements
from emulator.security_groups import rule
from emulator.services import Cloud

from tests.fakes import FakeDriver


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    monkeypatch.setattr("emulator.vpcs.host_taken", lambda: {"10.0.0.0/16"})  # no host scan in unit tests
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    c.account = c.accounts.create("student")[0]
    return c


def test_the_subnet_chosen_at_launch_holds_whoever_looks_first(cloud):
    me = cloud.account
    zone_c = cloud.vpcs.subnet_for(me.id, cloud.config.region, zone=f"{cloud.config.region}c")
    _, [inst] = cloud.run_instances_in_subnet(me, zone=zone_c.zone, image="tiny", kind="container")
    assert inst.details["subnet_id"] == zone_c.id and zone_c.cidr == "10.1.32.0/20"
    where = placements(cloud, me.id, cloud.describe_instances(me))[inst.id]
    assert where.interface.subnet_id == zone_c.id and where.interface.zone.endswith("c")
    [root] = where.volumes
    assert root.device == "/" and root.size_gib == 1 and root.delete_on_termination
    assert placements(cloud, me.id, [inst])[inst.id] == where  # the same records, not new ones
    other = cloud.accounts.create("other")[0]
    with pytest.raises(NotFound) as e:
        cloud.run_instances_in_subnet(other, subnet_id=zone_c.id, image="tiny", kind="container")
    assert e.value.code == "InvalidSubnetID.NotFound"
    assert cloud.describe_instances(other) == []


def test_modify_needs_a_stopped_instance_and_changes_the_engine_first(cloud, monkeypatch):
    me = cloud.account
    inst = cloud.run_instance(me, image="tiny", type="t2.nano", user_data="#!/bin/sh\necho one\n")
    resized = []
    monkeypatch.setattr(instance_attributes, "resize",
                        lambda driver, engine_id, itype: resized.append((engine_id, itype.name)))
    with pytest.raises(InvalidState) as e:
        cloud.modify_instance(me, inst.id, type="t2.micro")
    assert e.value.code == "IncorrectInstanceState" and resized == []
    cloud.stop_instance(me, inst.id)
    with pytest.raises(InvalidParameter):
        cloud.modify_instance(me, inst.id, type="x9.huge")
    with pytest.raises(InvalidParameter):
        cloud.modify_instance(me, inst.id, user_data="\x00")
    changed = cloud.modify_instance(me, inst.id, type="t2.micro", user_data="#!/bin/sh\necho two\n")
    assert (changed.type, changed.user_data) == ("t2.micro", "#!/bin/sh\necho two\n")
    assert resized == [(inst.engine_id, "t2.micro")]
    cloud.modify_instance(me, inst.id, type="t2.micro")  # already that type: the engine is left alone
    assert len(resized) == 1
    with pytest.raises(NotFound):
        cloud.modify_instance(cloud.accounts.create("other")[0], inst.id, type="t2.small")


def test_a_rule_change_skips_an_instance_terminated_meanwhile(cloud, monkeypatch):
    me = cloud.account
    group = cloud.security_groups.create(me.id, "web", "web")
    inst = cloud.run_instance(me, image="tiny", security_groups=[group.id])
    stale = cloud.describe_instances(me)  # what a revoke listed before the terminate took the lock
    cloud.terminate_instance(me, inst.id)
    monkeypatch.setattr(cloud, "describe_instances", lambda caller, **kw: stale)
    cloud.authorize_ingress(me, group.id, [rule("tcp", 80, 80)])  # no NotFound from the gone container
    assert cloud.security_groups.get(me.id, group.id).rules[0].from_port == 80
