"""Auto Scaling groups of containers on real dockerd, through boto3 and the aws CLI against
the running server: healing after kills behind pocketcloud's back, scaling, refresh, a
server killed mid-replacement, bad input and other accounts."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import requests
from botocore.exceptions import ClientError

from .asg import activities, client, containers_of, delete_group, describe, group, in_service, settled, template, wait
from .test_ec2 import aws

pytestmark = pytest.mark.integration


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def clients(server, user):
    ec2, asg = client(server, user, "ec2"), client(server, user, "autoscaling")
    yield ec2, asg
    for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
        delete_group(asg, g["AutoScalingGroupName"])


def test_members_killed_stopped_or_terminated_behind_its_back_are_replaced(clients, docker_client):
    ec2, asg = clients
    group(asg, "herd", template(ec2, "herd"), desired=3)
    first = settled(asg, "herd", 3)
    assert sorted(i["AvailabilityZone"] for i in describe(asg, "herd")["Instances"]) == \
        ["us-east-1a", "us-east-1b", "us-east-1c"]
    killed, stopped, terminated = first
    containers_of(docker_client, [killed])[0].kill()  # docker kill: pocketcloud is not told
    ec2.stop_instances(InstanceIds=[stopped])  # stopped through EC2: no longer healthy
    ec2.terminate_instances(InstanceIds=[terminated])
    now = wait("three replacements", lambda: (ids := settled(asg, "herd", 3)) and not set(ids) & set(first) and ids)
    assert sorted(i["AvailabilityZone"] for i in describe(asg, "herd")["Instances"]) == \
        ["us-east-1a", "us-east-1b", "us-east-1c"]  # each replacement went where its gap was
    acts = activities(asg, "herd")
    for iid in first:
        term = [a for a in acts if a["Description"] == f"Terminating EC2 instance: {iid}"]
        assert len(term) == 1 and term[0]["StatusCode"] == "Successful" and term[0]["Progress"] == 100, acts
        assert ("an instance was taken out of service in response to an EC2 health check indicating it has been "
                "terminated or stopped") in term[0]["Cause"] and term[0]["EndTime"] >= term[0]["StartTime"]
    launches = [a for a in acts if a["Description"].startswith("Launching a new EC2 instance: i-")]
    assert {a["Description"].rsplit(" ", 1)[1] for a in launches} == set(first) | set(now)
    assert all("in response to a difference between desired and actual capacity" in a["Cause"] for a in launches)
    live = [c for c in containers_of(docker_client, set(first) | set(now)) if c.status != "exited"]
    assert sorted(c.labels["pocketcloud.instance"] for c in live) == sorted(now)  # no orphan, nothing dead kept
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=list(first))[
        "Reservations"] for i in r["Instances"]}
    assert set(states.values()) == {"terminated"}


def test_scale_by_desired_terminate_in_group_and_user_health(clients):
    ec2, asg = clients
    group(asg, "scale", template(ec2, "scale"), desired=1, MinSize=1)
    settled(asg, "scale", 1)
    asg.set_desired_capacity(AutoScalingGroupName="scale", DesiredCapacity=4)
    four = settled(asg, "scale", 4)
    cause = activities(asg, "scale")[0]["Cause"]
    assert "a user request explicitly set group desired capacity changing the desired capacity from 1 to 4" in cause
    out = asg.terminate_instance_in_auto_scaling_group(InstanceId=four[0], ShouldDecrementDesiredCapacity=True)
    assert out["Activity"]["Description"] == f"Terminating EC2 instance: {four[0]}"
    assert "shrinking the capacity from 4 to 3" in out["Activity"]["Cause"]
    three = settled(asg, "scale", 3)
    assert describe(asg, "scale")["DesiredCapacity"] == 3 and four[0] not in three
    asg.terminate_instance_in_auto_scaling_group(InstanceId=three[0], ShouldDecrementDesiredCapacity=False)
    wait("a replacement", lambda: (ids := settled(asg, "scale", 3)) and three[0] not in ids)
    target = in_service(asg, "scale")[0]["InstanceId"]
    asg.set_instance_health(InstanceId=target, HealthStatus="Unhealthy")
    wait("the unhealthy member replaced", lambda: (ids := settled(asg, "scale", 3)) and target not in ids)
    assert any("in response to a user health-check" in a["Cause"] for a in activities(asg, "scale"))
    info = asg.describe_auto_scaling_instances(InstanceIds=[in_service(asg, "scale")[0]["InstanceId"]])
    assert info["AutoScalingInstances"][0]["HealthStatus"] == "HEALTHY"
    assert info["AutoScalingInstances"][0]["AutoScalingGroupName"] == "scale"
    asg.update_auto_scaling_group(AutoScalingGroupName="scale", MinSize=1, MaxSize=2)  # max below size: desired follows
    assert describe(asg, "scale")["DesiredCapacity"] == 2
    settled(asg, "scale", 2)
    with pytest.raises(ClientError) as e:
        asg.delete_auto_scaling_group(AutoScalingGroupName="scale")
    assert code(e) == "ResourceInUse"


def test_instance_refresh_keeps_the_minimum_healthy(clients):
    ec2, asg = clients
    tid = template(ec2, "fleet")
    group(asg, "fleet", tid, desired=3)
    old = settled(asg, "fleet", 3)
    ec2.create_launch_template_version(LaunchTemplateId=tid, SourceVersion="1",
                                       LaunchTemplateData={"InstanceType": "t2.micro"})
    rid = asg.start_instance_refresh(AutoScalingGroupName="fleet", Preferences={
        "MinHealthyPercentage": 66, "InstanceWarmup": 1})["InstanceRefreshId"]
    with pytest.raises(ClientError) as e:
        asg.start_instance_refresh(AutoScalingGroupName="fleet")
    assert code(e) == "InstanceRefreshInProgress"
    lowest, seen = 3, []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lowest = min(lowest, len(in_service(asg, "fleet")))
        r = asg.describe_instance_refreshes(AutoScalingGroupName="fleet", InstanceRefreshIds=[rid])[
            "InstanceRefreshes"][0]
        seen.append(r["PercentageComplete"])
        if r["Status"] not in ("Pending", "InProgress"):
            break
        time.sleep(0.2)
    assert r["Status"] == "Successful" and r["PercentageComplete"] == 100, r
    assert lowest >= 2, f"the refresh went below the minimum healthy: {lowest} in service"
    assert seen == sorted(seen)
    new = describe(asg, "fleet")["Instances"]
    assert len(new) == 3 and not {i["InstanceId"] for i in new} & set(old)
    assert {(i["InstanceType"], i["LaunchTemplate"]["Version"]) for i in new} == {("t2.micro", "2")}
    assert sum("in response to an instance refresh" in a["Cause"] for a in activities(asg, "fleet")) == 3
    with pytest.raises(ClientError) as e:
        asg.cancel_instance_refresh(AutoScalingGroupName="fleet")
    assert code(e) == "ActiveInstanceRefreshNotFound"


def test_server_killed_mid_replacement_ends_with_the_desired_count_and_no_orphans(server, user, clients,
                                                                                 docker_client):
    ec2, asg = clients
    group(asg, "crash", template(ec2, "crash"), desired=1)
    settled(asg, "crash", 1)
    asg.set_desired_capacity(AutoScalingGroupName="crash", DesiredCapacity=6)

    def mid_launch():
        acts = activities(asg, "crash")
        return any(a["StatusCode"] == "InProgress" for a in acts) and len(in_service(asg, "crash")) >= 2

    wait("launches under way", mid_launch, every=0.05)
    os.killpg(server.proc.pid, signal.SIGKILL)  # kill -9 in the middle of the scale-out
    server.proc.wait()
    server.start()
    members = settled(asg, "crash", 6, timeout=90)
    mine = [c for c in docker_client.containers.list(all=True, filters={"label": "pocketcloud.instance"})
            if c.labels.get("pocketcloud.owner") and c.labels["pocketcloud.instance"] in
            {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}]
    # The reconcile loop removes an engine object whose record was settled as terminated: give it a pass.
    wait("no orphan container", lambda: sorted(c.labels["pocketcloud.instance"] for c in mine
                                                if _alive(c)) == sorted(members), timeout=20)
    running = [i["InstanceId"] for r in ec2.describe_instances(Filters=[
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])["Reservations"]
        for i in r["Instances"]]
    assert sorted(running) == sorted(members)
    acts = activities(asg, "crash")
    assert all(a["StatusCode"] in ("Successful", "Failed") for a in acts)
    # the kill did land mid-launch: the new process settled what the old one left in flight
    assert any("the server restarted" in (a.get("StatusMessage") or "") for a in acts), acts


def _alive(container) -> bool:
    try:
        container.reload()
    except Exception:  # noqa: BLE001 - removed: not alive
        return False
    return container.status == "running"


def test_bad_input_other_accounts_and_the_query_protocol(server, user, clients):
    ec2, asg = clients
    tid = template(ec2, "base")
    good = {"AutoScalingGroupName": "g", "LaunchTemplate": {"LaunchTemplateId": tid}, "MinSize": 1, "MaxSize": 2,
            "AvailabilityZones": ["us-east-1a"]}
    cases = [({"MinSize": 3}, "ValidationError", "Max bound, 2, must be greater than or equal to min bound, 3"),
             ({"DesiredCapacity": 5}, "ValidationError", "Desired capacity:5 must be between"),
             ({"AvailabilityZones": ["us-east-1z"]}, "ValidationError", "not legal"),
             ({"LaunchTemplate": {"LaunchTemplateId": "lt-00000000000000000"}}, "ValidationError", "does not exist"),
             ({"HealthCheckType": "ELB"}, "ValidationError", "load balancers"),
             ({"TargetGroupARNs": ["arn:aws:elasticloadbalancing:x"]}, "ValidationError", "load balancers"),
             ({"AutoScalingGroupName": "bad name!"}, "ValidationError", "AutoScalingGroupName")]
    for change, expected, message in cases:
        with pytest.raises(ClientError) as e:
            asg.create_auto_scaling_group(**{**good, **change})
        assert code(e) == expected and message in e.value.response["Error"]["Message"], (change, e.value)
    asg.create_auto_scaling_group(**good)
    with pytest.raises(ClientError) as e:
        asg.create_auto_scaling_group(**good)
    assert code(e) == "AlreadyExists"
    asg.create_auto_scaling_group(**{**good, "AutoScalingGroupName": "empty", "MinSize": 0, "DesiredCapacity": 0})
    pages = list(asg.get_paginator("describe_auto_scaling_groups").paginate(PaginationConfig={"PageSize": 1}))
    assert [[g["AutoScalingGroupName"] for g in p["AutoScalingGroups"]] for p in pages] == [["g"], ["empty"]]
    asg.delete_auto_scaling_group(AutoScalingGroupName="empty")  # no members: no ForceDelete needed
    other_api = server.new_user(f"asg-other-{server.port}")
    other = client(server, other_api, "autoscaling")
    assert other.describe_auto_scaling_groups(AutoScalingGroupNames=["g"])["AutoScalingGroups"] == []
    with pytest.raises(ClientError) as e:  # someone else's template: as if it did not exist
        other.create_auto_scaling_group(**{**good, "AutoScalingGroupName": "theirs"})
    assert code(e) == "ValidationError" and "does not exist" in e.value.response["Error"]["Message"]
    member = settled(asg, "g", 1)[0]
    for call in (lambda: other.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=2),
                 lambda: other.update_auto_scaling_group(AutoScalingGroupName="g", MaxSize=1),
                 lambda: other.delete_auto_scaling_group(AutoScalingGroupName="g", ForceDelete=True),
                 lambda: other.describe_scaling_activities(AutoScalingGroupName="g"),
                 lambda: other.terminate_instance_in_auto_scaling_group(InstanceId=member,
                                                                        ShouldDecrementDesiredCapacity=False),
                 lambda: other.set_instance_health(InstanceId=member, HealthStatus="Unhealthy"),
                 lambda: other.start_instance_refresh(AutoScalingGroupName="g")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "ValidationError" and "not found" in e.value.response["Error"]["Message"]
    assert settled(asg, "g", 1) == [member] and describe(asg, "g")["DesiredCapacity"] == 1
    assert other.describe_auto_scaling_groups()["AutoScalingGroups"] == []
    with pytest.raises(ClientError) as e:
        asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=9)
    assert code(e) == "ValidationError"
    # Query protocol: an unknown action, an unsigned request, a body too large
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest("POST", server.url + "/", data="Action=LaunchRockets&Version=2011-01-01",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(user.key_id, user.secret), "autoscaling", "us-east-1").add_auth(req)
    r = requests.post(server.url + "/", data=req.body, headers=dict(req.headers))
    assert r.status_code == 400 and "<Code>InvalidAction</Code>" in r.text and "<ErrorResponse" in r.text
    assert 'xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"' in r.text
    with pytest.raises(ClientError) as e:
        asg.put_warm_pool(AutoScalingGroupName="g", MinSize=1)
    assert code(e) == "NotImplemented" and "warm pools" in e.value.response["Error"]["Message"]
    assert asg.describe_warm_pool(AutoScalingGroupName="g")["Instances"] == []
    assert asg.describe_lifecycle_hooks(AutoScalingGroupName="g")["LifecycleHooks"] == []


def test_policies_and_the_aws_cli(server, user, clients):
    ec2, asg = clients
    template(ec2, "cli")
    out = aws(server, user, "autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", "cli",
              "--launch-template", "LaunchTemplateName=cli,Version=$Latest", "--min-size", "1", "--max-size", "3",
              "--desired-capacity", "1", "--availability-zones", "us-east-1a", "us-east-1b",
              "--tags", "Key=team,Value=blue,PropagateAtLaunch=true")
    assert out.returncode == 0, out.stderr
    settled(asg, "cli", 1)
    out = aws(server, user, "autoscaling", "put-scaling-policy", "--auto-scaling-group-name", "cli",
              "--policy-name", "plus-one", "--policy-type", "SimpleScaling", "--adjustment-type", "ChangeInCapacity",
              "--scaling-adjustment", "1")
    assert out.returncode == 0 and json.loads(out.stdout)["PolicyARN"].endswith(":policyName/plus-one"), out.stderr
    assert aws(server, user, "autoscaling", "execute-policy", "--auto-scaling-group-name", "cli",
               "--policy-name", "plus-one").returncode == 0
    two = settled(asg, "cli", 2)
    ec2_tags = {t["Key"]: t["Value"] for r in ec2.describe_instances(InstanceIds=two)["Reservations"]
                for i in r["Instances"] for t in i.get("Tags", [])}
    assert ec2_tags.get("team") == "blue"  # PropagateAtLaunch
    out = aws(server, user, "autoscaling", "describe-scaling-activities", "--auto-scaling-group-name", "cli",
              "--max-items", "1")
    assert out.returncode == 0 and "executed policy plus-one changing the desired capacity from 1 to 2" in \
        json.loads(out.stdout)["Activities"][0]["Cause"]
    out = aws(server, user, "autoscaling", "describe-policies", "--auto-scaling-group-name", "cli")
    assert [p["PolicyName"] for p in json.loads(out.stdout)["ScalingPolicies"]] == ["plus-one"]
    out = aws(server, user, "autoscaling", "set-desired-capacity", "--auto-scaling-group-name", "cli",
              "--desired-capacity", "7")
    assert out.returncode != 0 and "ValidationError" in out.stderr and "above max value 3" in out.stderr
    out = aws(server, user, "autoscaling", "delete-auto-scaling-group", "--auto-scaling-group-name", "cli",
              "--force-delete")
    assert out.returncode == 0, out.stderr
    wait("the group gone", lambda: not asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["cli"])["AutoScalingGroups"], 60)
    states = {i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=two)["Reservations"] for i in r["Instances"]}
    assert states == {"terminated"}


def test_failing_launches_back_off_and_say_why(clients):
    ec2, asg = clients
    broken = ec2.create_launch_template(LaunchTemplateName="broken", LaunchTemplateData={
        "ImageId": "ami-00000000000000000", "InstanceType": "t2.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    group(asg, "broken", broken, desired=2)
    first = wait("a failed launch", lambda: [a for a in activities(asg, "broken") if a["StatusCode"] == "Failed"])
    assert "Launching EC2 instance failed." in first[0]["Description"] and first[0]["Progress"] == 100
    assert "does not exist" in first[0]["StatusMessage"]
    threading.Event().wait(5)  # inside the first back-off (10 s): no new attempt
    assert len(activities(asg, "broken")) == 2  # the two launches of the first attempt, nothing since
    assert describe(asg, "broken")["Instances"] == []


def test_subnets_place_members_and_another_accounts_subnet_is_refused(server, clients):
    ec2, asg = clients
    tid = template(ec2, "subnets")
    mine = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}
    other = client(server, server.new_user(f"asg-subnets-{server.port}"), "ec2")
    theirs = other.describe_subnets()["Subnets"][0]["SubnetId"]
    spec = {"LaunchTemplate": {"LaunchTemplateId": tid}, "MinSize": 0, "MaxSize": 2, "DesiredCapacity": 2}
    for bad in (theirs, f"{mine['us-east-1a']},{theirs}"):  # their VPC is another VPC, and not ours to see
        with pytest.raises(ClientError) as e:
            asg.create_auto_scaling_group(AutoScalingGroupName="nets", VPCZoneIdentifier=bad, **spec)
        assert code(e) == "ValidationError" and "does not exist" in e.value.response["Error"]["Message"], e.value
    assert asg.describe_auto_scaling_groups()["AutoScalingGroups"] == [], "nothing created"
    asg.create_auto_scaling_group(AutoScalingGroupName="nets", **spec,
                                  VPCZoneIdentifier=f"{mine['us-east-1a']},{mine['us-east-1b']}")
    members = settled(asg, "nets", 2)
    placed = {i["InstanceId"]: (i["Placement"]["AvailabilityZone"], i["SubnetId"])
              for r in ec2.describe_instances(InstanceIds=members)["Reservations"] for i in r["Instances"]}
    assert sorted(placed.values()) == [("us-east-1a", mine["us-east-1a"]), ("us-east-1b", mine["us-east-1b"])]


def test_a_member_whose_container_is_removed_from_the_engine_is_replaced(clients, docker_client):
    ec2, asg = clients
    group(asg, "lost", template(ec2, "lost"), desired=1, zones=("a",))
    [first] = settled(asg, "lost", 1)
    containers_of(docker_client, [first])[0].remove(force=True)  # docker rm -f: lost with its host, as it were
    [second] = wait("a replacement", lambda: (ids := settled(asg, "lost", 1)) and first not in ids and ids)
    term = [a for a in activities(asg, "lost") if a["Description"] == f"Terminating EC2 instance: {first}"]
    assert len(term) == 1 and "terminated or stopped" in term[0]["Cause"] and term[0]["StatusCode"] == "Successful"
    assert ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"] == \
        "terminated" and second != first


def test_a_health_report_inside_the_grace_period_is_ignored_when_asked(clients):
    ec2, asg = clients
    group(asg, "grace", template(ec2, "grace"), desired=1, zones=("a",), HealthCheckType="EC2",
          HealthCheckGracePeriod=600)
    [first] = settled(asg, "grace", 1)
    assert describe(asg, "grace")["HealthCheckGracePeriod"] == 600
    asg.set_instance_health(InstanceId=first, HealthStatus="Unhealthy", ShouldRespectGracePeriod=True)
    time.sleep(2.5)  # more than two healer ticks
    assert settled(asg, "grace", 1) == [first], "inside the grace period the report changes nothing"
    asg.set_instance_health(InstanceId=first, HealthStatus="Unhealthy", ShouldRespectGracePeriod=False)
    wait("the unhealthy member replaced", lambda: (ids := settled(asg, "grace", 1)) and first not in ids)
