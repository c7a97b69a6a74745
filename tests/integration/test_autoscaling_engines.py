"""Auto Scaling against what only the engines can show: CPU burnt inside a container moves
a target-tracking group out and back in; a VM destroyed with libvirt is replaced."""
from __future__ import annotations

import threading

import libvirt
import pytest

from .asg import activities, client, delete_group, describe, group, settled, template, wait

pytestmark = pytest.mark.integration


@pytest.fixture
def clients(server, user):
    ec2, asg = client(server, user, "ec2"), client(server, user, "autoscaling")
    yield ec2, asg
    for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        delete_group(asg, g["AutoScalingGroupName"], timeout=300)


def test_target_tracking_follows_cpu_burnt_in_a_container(user, clients):
    ec2, asg = clients
    group(asg, "cpu", template(ec2, "cpu"), desired=1, MinSize=1, MaxSize=3)
    [first] = settled(asg, "cpu", 1)
    policy = asg.put_scaling_policy(AutoScalingGroupName="cpu", PolicyName="cpu40", PolicyType="TargetTrackingScaling",
                                    EstimatedInstanceWarmup=0, TargetTrackingConfiguration={
                                        "PredefinedMetricSpecification": {
                                            "PredefinedMetricType": "ASGAverageCPUUtilization"},
                                        "TargetValue": 40.0})
    assert [a["AlarmName"].split("-")[2] for a in policy["Alarms"]] == ["AlarmHigh", "AlarmLow"]
    burn = threading.Thread(target=user.ok, args=("POST", f"/instances/{first}/exec"), kwargs={"json": {
        "command": "timeout 30 sh -c 'while :; do :; done'; true", "timeout": 60}})
    burn.start()
    try:
        wait("a scale-out on CPU", lambda: describe(asg, "cpu")["DesiredCapacity"] >= 2, timeout=45)
        out = [a for a in activities(asg, "cpu") if "monitor alarm TargetTracking-cpu-AlarmHigh-" in a["Cause"]]
        assert out and "in state ALARM triggered policy cpu40 changing the desired capacity from 1 to" in out[0]["Cause"]
    finally:
        burn.join()
    wait("the scale-in once the CPU is idle", lambda: describe(asg, "cpu")["DesiredCapacity"] == 1, timeout=90)
    assert any("AlarmLow" in a["Cause"] for a in activities(asg, "cpu"))
    settled(asg, "cpu", 1)


def test_a_vm_destroyed_with_libvirt_is_replaced(user, clients):
    ec2, asg = clients
    group(asg, "vms", template(ec2, "vms", kind="vm"), desired=1, zones=("a",))
    [first] = settled(asg, "vms", 1, timeout=240)
    domain = user.ok("GET", f"/instances/{first}")["engine"]["id"]
    conn = libvirt.open("qemu:///system")
    try:
        conn.lookupByName(domain).destroy()  # virsh destroy: pocketcloud is not told
    finally:
        conn.close()
    [second] = wait("a replacement VM", lambda: (ids := settled(asg, "vms", 1, timeout=240)) and first not in ids
                    and ids, timeout=240)
    term = [a for a in activities(asg, "vms") if a["Description"] == f"Terminating EC2 instance: {first}"]
    assert term and "terminated or stopped" in term[0]["Cause"]
    assert user.ok("GET", f"/instances/{second}")["kind"] == "vm"
    assert user.ok("GET", f"/instances/{first}")["state"] == "terminated"
