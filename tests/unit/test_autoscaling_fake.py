"""Auto Scaling rules with a fake driver: healing, balance, scale in/out, back-off, refresh,
recovery after a restart, bad input. The real-engine behaviour is in tests/integration."""
from __future__ import annotations

import base64
import time

import pytest

from emulator.autoscaling import AutoScaling
from emulator.autoscaling import healer as healer_mod
from emulator.config import Config
from emulator.errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from emulator.launch_templates import LaunchTemplates, ami_id
from emulator.services import Cloud

from tests.fakes import FakeDriver

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


@pytest.fixture
def cloud(tmp_path):
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none"), drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    return c


@pytest.fixture
def asg(cloud):
    svc = AutoScaling(cloud)
    yield svc
    svc.healer.settle(10)


@pytest.fixture
def alice(cloud):
    return cloud.accounts.create("alice")[0]


def template(cloud, owner, name="web", ami=None, **data) -> str:
    lt = LaunchTemplates(cloud.store).create(owner.id, name, {"ImageId": ami or ami_id("tiny", "container"),
                                                              "InstanceType": "t2.nano", **data})
    return lt.template.id


def group(asg, owner, tid, name="g", zones=ZONES, **sizes):
    spec = {"AutoScalingGroupName": name, "LaunchTemplate": {"LaunchTemplateId": tid},
            "AvailabilityZones": zones, "MinSize": 1, "MaxSize": 6, "DesiredCapacity": 3}
    spec.update(sizes)
    return asg.create_group(owner, spec)


def run(asg, ticks: int = 1) -> None:
    for _ in range(ticks):
        asg.healer.tick()
        assert asg.healer.settle(10)


def live(asg, owner, name="g"):
    return asg.members(asg.group(owner.id, name))


def test_launches_desired_capacity_balanced_across_zones_with_propagated_tags(cloud, asg, alice):
    tid = template(cloud, alice, TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "app", "Value": "lt"}]}],
                   UserData=base64.b64encode(b"#!/bin/sh\necho hi\n").decode())
    group(asg, alice, tid, Tags=[{"Key": "team", "Value": "a", "PropagateAtLaunch": "true"},
                                 {"Key": "app", "Value": "asg", "PropagateAtLaunch": True},
                                 {"Key": "quiet", "Value": "x", "PropagateAtLaunch": False}])
    run(asg, 2)
    members = live(asg, alice)
    assert len(members) == 3 and {m.az for m in members} == set(ZONES)
    assert all(m.lifecycle == "InService" and m.health == "Healthy" for m in members)
    inst = cloud.get_instance(alice, members[0].instance_id)
    assert inst.tags == {"app": "asg", "team": "a"}  # the group's tag wins over the template's, as on AWS
    assert inst.user_data == "#!/bin/sh\necho hi\n" and inst.type == "t2.nano"
    acts = asg.activities.list(alice.id, "g")
    assert len(acts) == 3 and all(a.status == "Successful" for a in acts)
    assert acts[0].description.startswith("Launching a new EC2 instance: i-")
    assert "a user request created an AutoScalingGroup changing the desired capacity from 0 to 3" in acts[0].cause


def test_a_member_killed_behind_the_clouds_back_is_replaced(cloud, asg, alice):
    group(asg, alice, template(cloud, alice), DesiredCapacity=2)
    run(asg)
    victim = live(asg, alice)[0]
    inst = cloud.get_instance(alice, victim.instance_id)
    cloud.drivers["container"].objects[inst.engine_id]["state"] = "stopped"  # `docker kill`: the record still says running
    run(asg, 2)
    members = live(asg, alice)
    assert len(members) == 2 and victim.instance_id not in {m.instance_id for m in members}
    assert cloud.get_instance(alice, victim.instance_id).state == "terminated"
    term = [a for a in asg.activities.list(alice.id, "g") if victim.instance_id in a.description][0]
    assert term.description == f"Terminating EC2 instance: {victim.instance_id}" and term.status == "Successful"
    assert "in response to an EC2 health check indicating it has been terminated or stopped" in term.cause
    assert victim.az in {m.az for m in members}  # the replacement went where the gap was


def test_scale_in_takes_from_the_fullest_zone_and_scale_out_fills_the_emptiest(cloud, asg, alice):
    group(asg, alice, template(cloud, alice), DesiredCapacity=4)
    run(asg)
    assert sorted(m.az for m in live(asg, alice)) == ["us-east-1a", "us-east-1a", "us-east-1b", "us-east-1c"]
    asg.set_desired(alice, "g", 3)
    run(asg)
    assert sorted(m.az for m in live(asg, alice)) == ZONES
    scale_in = asg.activities.list(alice.id, "g")[0]
    assert "explicitly set group desired capacity changing the desired capacity from 4 to 3" in scale_in.cause
    assert "shrinking the capacity from 4 to 3" in scale_in.cause and "was selected for termination" in scale_in.cause


def test_failing_launches_back_off_and_are_recorded(cloud, asg, alice, monkeypatch):
    group(asg, alice, template(cloud, alice, ami="ami-00000000000000000"), DesiredCapacity=1)
    run(asg, 3)
    failed = asg.activities.list(alice.id, "g")
    assert len(failed) == 1 and failed[0].status == "Failed"  # ticks inside the back-off launch nothing
    assert "does not exist" in failed[0].status_message and "Launching EC2 instance failed." in failed[0].description
    g = asg.group(alice.id, "g")
    assert g.runtime["failures"] == 1 and g.runtime["next_launch_at"] > time.time() + 5
    asg.save(g, runtime={**g.runtime, "next_launch_at": 0})
    run(asg)
    assert asg.group(alice.id, "g").runtime["failures"] == 2
    assert healer_mod.backoff(2) == 20 and healer_mod.backoff(10) == 300


def test_terminate_in_group_with_and_without_decrement_and_user_health(cloud, asg, alice):
    group(asg, alice, template(cloud, alice), DesiredCapacity=2, MinSize=1)
    run(asg)
    first, second = [m.instance_id for m in live(asg, alice)]
    asg.terminate_instance(alice, first, decrement=False)
    run(asg, 2)
    assert len(live(asg, alice)) == 2 and first not in {m.instance_id for m in live(asg, alice)}
    asg.terminate_instance(alice, second, decrement=True)
    run(asg, 2)
    assert asg.group(alice.id, "g").desired == 1 and len(live(asg, alice)) == 1
    with pytest.raises(InvalidParameter, match="min size"):
        asg.terminate_instance(alice, live(asg, alice)[0].instance_id, decrement=True)
    last = live(asg, alice)[0].instance_id
    asg.set_instance_health(alice, last, "Unhealthy")
    run(asg, 2)
    assert [m.instance_id for m in live(asg, alice)] != [last]
    assert any("in response to a user health-check" in a.cause for a in asg.activities.list(alice.id, "g"))


def test_bad_input_changes_nothing_and_other_accounts_see_nothing(cloud, asg, alice):
    bob = cloud.accounts.create("bob")[0]
    tid = template(cloud, alice)
    for sizes, message in (({"MinSize": 3, "MaxSize": 2}, "Max bound, 2, must be greater than or equal to min bound, 3"),
                           ({"DesiredCapacity": 9}, "Desired capacity:9 must be between")):
        with pytest.raises(InvalidParameter, match=message):
            group(asg, alice, tid, **sizes)
    with pytest.raises(InvalidParameter, match="not legal"):
        group(asg, alice, tid, zones=["us-east-1z"])
    with pytest.raises(InvalidParameter, match="load balancers"):
        group(asg, alice, tid, LoadBalancerNames=["lb"])
    with pytest.raises(InvalidParameter, match="no subnets yet"):  # no VPC registry wired in
        group(asg, alice, tid, zones=[], VPCZoneIdentifier="subnet-a")
    with pytest.raises(InvalidParameter, match="does not exist"):
        group(asg, bob, tid)  # alice's template is not bob's
    assert asg.groups(None) == []
    group(asg, alice, tid)
    with pytest.raises(AlreadyExists):
        group(asg, alice, tid)
    for call in (lambda: asg.set_desired(bob, "g", 2), lambda: asg.delete_group(bob, "g", True),
                 lambda: asg.update_group(bob, "g", {"MaxSize": 1})):
        with pytest.raises(NotFound, match="not found"):
            call()
    run(asg)
    with pytest.raises(NotFound, match="No managed instance"):
        asg.terminate_instance(bob, live(asg, alice)[0].instance_id, decrement=False)
    with pytest.raises(InvalidState):
        asg.delete_group(alice, "g")  # members left and no ForceDelete: ResourceInUse
    assert asg.group(alice.id, "g").desired == 3


def test_force_delete_terminates_members_then_the_group(cloud, asg, alice):
    group(asg, alice, template(cloud, alice), DesiredCapacity=2)
    run(asg)
    ids = [m.instance_id for m in live(asg, alice)]
    asg.delete_group(alice, "g", force=True)
    assert asg.group(alice.id, "g").status == "Delete in progress"
    run(asg, 3)
    assert asg.groups(alice.id) == []
    assert {cloud.get_instance(alice, i).state for i in ids} == {"terminated"}


def test_refresh_replaces_every_member_keeping_the_minimum_healthy(cloud, asg, alice):
    tid = template(cloud, alice)
    group(asg, alice, tid, DesiredCapacity=3, LaunchTemplate={"LaunchTemplateId": tid, "Version": "$Latest"})
    run(asg)
    old = {m.instance_id for m in live(asg, alice)}
    store = LaunchTemplates(cloud.store)
    store.create_version(store.get(alice.id, tid), {"InstanceType": "t2.micro"}, source_version="1")
    rid = asg.refreshes.start(alice, "g", prefs={"MinHealthyPercentage": 66, "InstanceWarmup": 0})
    lowest = 3
    for _ in range(20):
        run(asg)
        lowest = min(lowest, len([m for m in live(asg, alice) if m.counts]))
        if asg.refreshes.describe(alice, "g", [rid])[0].status == "Successful":
            break
    refresh = asg.refreshes.describe(alice, "g", [rid])[0]
    assert refresh.status == "Successful" and refresh.percentage == 100
    new = live(asg, alice)
    assert len(new) == 3 and not old & {m.instance_id for m in new}
    assert {m.template["Version"] for m in new} == {"2"} and lowest >= 2
    assert {cloud.get_instance(alice, m.instance_id).type for m in new} == {"t2.micro"}


def test_restart_mid_launch_adopts_the_running_and_removes_the_half_made(cloud, alice, tmp_path):
    first = AutoScaling(cloud)
    group(first, alice, template(cloud, alice), DesiredCapacity=2)
    run(first)
    # Simulate a process that died mid-launch twice: one instance running but never recorded
    # as a member, one record still pending without an engine object.
    members = live(first, alice)
    ran = cloud.get_instance(alice, members[0].instance_id)
    acts = [first.activities.start(alice.id, "g", "Launching a new EC2 instance", "x") for _ in range(2)]
    with cloud.store.tx() as c:
        c.execute("DELETE FROM autoscaling_members")
        for launch, act in zip((ran.details["autoscaling"]["launch"], "halfmade"), acts):
            c.execute("INSERT INTO autoscaling_launches VALUES (?,?,?,?,?,?,?)",
                      (launch, alice.id, "g", "us-east-1a", act, "dead-process", time.time()))
    half = cloud.run_instance(alice, image="tiny", extra={"autoscaling": {"group": "g", "launch": "halfmade"}})
    cloud._save(half.id, state="pending", engine_id=None)
    second = AutoScaling(cloud)
    report = second.healer.recover()
    assert report["adopted"] == [ran.id]
    assert half.id in report["removed"] and members[1].instance_id in report["removed"]  # a stray: no member, no launch
    run(second, 2)
    assert len(live(second, alice)) == 2 and ran.id in {m.instance_id for m in live(second, alice)}
    running = [i for i in cloud.describe_instances(alice) if i.state != "terminated"]
    assert len(running) == 2  # exactly the desired count, no orphan


def test_simple_and_step_policies(cloud, asg, alice):
    group(asg, alice, template(cloud, alice), DesiredCapacity=2)
    asg.policies.put(alice, "g", "up", {"PolicyType": "SimpleScaling", "AdjustmentType": "ChangeInCapacity",
                                        "ScalingAdjustment": "2"})
    asg.policies.put(alice, "g", "steps", {"PolicyType": "StepScaling", "AdjustmentType": "PercentChangeInCapacity",
                                           "StepAdjustments": [{"MetricIntervalUpperBound": "0", "ScalingAdjustment": "-50"},
                                                               {"MetricIntervalLowerBound": "0", "ScalingAdjustment": "100"}]})
    asg.policies.execute(alice, "g", "up")
    assert asg.group(alice.id, "g").desired == 4
    asg.policies.execute(alice, "g", "steps", metric_value=10, breach_threshold=50)
    assert asg.group(alice.id, "g").desired == 2
    with pytest.raises(InvalidParameter):
        asg.policies.execute(alice, "g", "steps")
    assert [p["PolicyName"] for p in asg.policies.list(alice, "g")] == ["up", "steps"]


def test_target_tracking_follows_the_measured_cpu(cloud, asg, alice, monkeypatch):
    group(asg, alice, template(cloud, alice), DesiredCapacity=1, MinSize=1, MaxSize=4)
    policy = asg.policies.put(alice, "g", "cpu", {"PolicyType": "TargetTrackingScaling", "EstimatedInstanceWarmup": 0,
                                                  "TargetTrackingConfiguration": {
                                                      "PredefinedMetricSpecification": {
                                                          "PredefinedMetricType": "ASGAverageCPUUtilization"},
                                                      "TargetValue": "40"}})
    assert policy["Alarms"][0]["AlarmName"].startswith("TargetTracking-g-AlarmHigh-")
    cpu = {"value": 90.0}
    monkeypatch.setattr(asg.policies.meter, "utilization", lambda inst: cpu["value"])

    def run_sampled(ticks: int) -> None:
        for _ in range(ticks):
            asg.policies.tick()
            run(asg)

    run_sampled(4)
    assert asg.group(alice.id, "g").desired == 3  # ceil(1 * 90 / 40)
    assert len(live(asg, alice)) == 3
    cause = [a for a in asg.activities.list(alice.id, "g") if "monitor alarm" in a.cause][0].cause
    assert "triggered policy cpu changing the desired capacity from 1 to 3" in cause
    cpu["value"] = 5.0
    run_sampled(8)
    assert asg.group(alice.id, "g").desired == 1


def test_subnets_of_one_vpc_place_members_in_their_zone(cloud, alice):
    """The cloud's own VPC registry, not a fake of it: the launch itself is given the member's
    subnet (with VPC networking its interface and address are reserved there at launch), so the
    subnets must be ones the launch can look up."""
    from emulator.autoscaling.placement import VpcPlacement

    region = cloud.config.region
    cloud.vpcs.taken = lambda: set()  # the host's own networks do not matter here
    vpc, other = cloud.vpcs.create(alice.id, "10.71.0.0/16"), cloud.vpcs.create(alice.id, "10.72.0.0/16")
    sa, sb = (cloud.vpcs.create_subnet(alice.id, region, vpc.id, f"10.71.{i}.0/24", f"{region}{z}")
              for i, z in ((1, "a"), (2, "b")))
    sx = cloud.vpcs.create_subnet(alice.id, region, other.id, "10.72.1.0/24", f"{region}a")
    asg = AutoScaling(cloud, VpcPlacement(cloud.vpcs, region))
    tid = template(cloud, alice)
    for subnets, message in ((f"{sa.id},{sx.id}", "same VPC"), ("subnet-0123456789abcdef0", "does not exist")):
        with pytest.raises(InvalidParameter, match=message):
            group(asg, alice, tid, zones=[], VPCZoneIdentifier=subnets)
    g = group(asg, alice, tid, zones=[], VPCZoneIdentifier=f"{sa.id},{sb.id}", DesiredCapacity=2)
    assert g.config["AvailabilityZones"] == [f"{region}a", f"{region}b"]
    run(asg)
    members = live(asg, alice)
    by_zone = {f"{region}a": sa.id, f"{region}b": sb.id}
    interfaces = {i.instance_id: i.subnet_id for i in cloud.vpcs.interfaces(
        alice.id, region, {m.instance_id: None for m in members})}
    assert {interfaces[m.instance_id] for m in members} == {sa.id, sb.id}
    assert all(interfaces[m.instance_id] == by_zone[m.az] for m in members)
    # The launch was given the subnet: the record says where the member went.
    assert all(cloud.get_instance(alice, m.instance_id).details["subnet_id"] == by_zone[m.az] for m in members)
    asg.healer.settle(10)


def test_a_request_that_waits_too_long_for_the_group_is_resource_contention(cloud, asg, alice, monkeypatch):
    import threading

    group(asg, alice, template(cloud, alice))
    monkeypatch.setattr("emulator.autoscaling.service.REQUEST_WAIT", 0.1)
    held, release = threading.Event(), threading.Event()

    def hold():
        with asg.lock:
            held.set()
            release.wait(5)

    threading.Thread(target=hold).start()
    held.wait(5)
    try:
        with pytest.raises(InvalidState) as e:
            asg.set_desired(alice, "g", 2)
        assert e.value.code == "ResourceContention"
    finally:
        release.set()
    assert asg.set_desired(alice, "g", 2).desired == 2


def test_refresh_with_max_healthy_above_100_launches_before_it_terminates(cloud, asg, alice):
    tid = template(cloud, alice)
    group(asg, alice, tid, DesiredCapacity=2, LaunchTemplate={"LaunchTemplateId": tid, "Version": "$Latest"})
    run(asg)
    old = {m.instance_id for m in live(asg, alice)}
    rid = asg.refreshes.start(alice, "g", prefs={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 150,
                                                 "InstanceWarmup": 0})
    lowest, highest = 2, 2
    for _ in range(20):
        run(asg)
        serving = len([m for m in live(asg, alice) if m.counts])
        lowest, highest = min(lowest, serving), max(highest, serving)
        if asg.refreshes.describe(alice, "g", [rid])[0].status == "Successful":
            break
    assert asg.refreshes.describe(alice, "g", [rid])[0].status == "Successful"
    assert lowest == 2 and highest == 3  # never below desired, never above 150% of it
    assert not old & {m.instance_id for m in live(asg, alice)} and len(live(asg, alice)) == 2
    with pytest.raises(InvalidParameter, match="above 100"):
        asg.refreshes.start(alice, "g", prefs={"MinHealthyPercentage": 100})


def test_a_cancelled_refresh_stops_and_the_group_settles_at_its_desired_capacity(cloud, asg, alice):
    tid = template(cloud, alice)
    group(asg, alice, tid, DesiredCapacity=3)
    run(asg)
    rid = asg.refreshes.start(alice, "g", prefs={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200,
                                                 "InstanceWarmup": 3600})
    run(asg, 2)  # launches the first batch above desired, then waits for it to warm up (an hour)
    assert len(live(asg, alice)) > 3
    assert asg.refreshes.cancel(alice, "g") == rid
    assert asg.refreshes.describe(alice, "g", [rid])[0].status == "Cancelled"
    run(asg, 2)
    assert len([m for m in live(asg, alice) if m.counts]) == 3  # the surplus went again
    with pytest.raises(NotFound):
        asg.refreshes.cancel(alice, "g")
