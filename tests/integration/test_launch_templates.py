"""EC2 launch templates through boto3 against the running server: versions, the default
version, RunInstances from a template (by id or name, $Latest/$Default/N), other accounts."""
from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError

from .asg import ami, client, template

pytestmark = pytest.mark.integration


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture
def ec2(server, user):
    c = client(server, user, "ec2")
    yield c
    ids = [i["InstanceId"] for r in c.describe_instances()["Reservations"] for i in r["Instances"]
           if i["State"]["Name"] != "terminated"]
    if ids:
        c.terminate_instances(InstanceIds=ids)


def test_versions_default_and_run_instances_from_a_template(ec2, docker_client):
    tid = template(ec2, "web", user_data="#!/bin/sh\necho from-template-v1 > /tmp/v\n",
                   SecurityGroups=["default"],
                   TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}],
                   BlockDeviceMappings=[{"DeviceName": "/dev/vda", "Ebs": {"VolumeSize": 2, "VolumeType": "gp3",
                                                                         "DeleteOnTermination": True}}])
    v2 = ec2.create_launch_template_version(LaunchTemplateId=tid, SourceVersion="1", VersionDescription="bigger",
                                            LaunchTemplateData={"InstanceType": "t2.micro"})["LaunchTemplateVersion"]
    assert v2["VersionNumber"] == 2 and v2["DefaultVersion"] is False
    assert v2["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"] == {"VolumeSize": 2, "VolumeType": "gp3",
                                                                         "DeleteOnTermination": True}
    lt = ec2.describe_launch_templates(LaunchTemplateNames=["web"])["LaunchTemplates"][0]
    assert (lt["LaunchTemplateId"], lt["DefaultVersionNumber"], lt["LatestVersionNumber"]) == (tid, 1, 2)
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=tid)["LaunchTemplateVersions"]
    assert [v["VersionNumber"] for v in versions] == [1, 2]
    assert versions[0]["LaunchTemplateData"]["TagSpecifications"][0]["Tags"] == [{"Key": "role", "Value": "web"}]

    def run(**spec) -> dict:
        inst = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate=spec)["Instances"][0]
        ec2.get_waiter("instance_running").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig={"Delay": 1})
        return inst

    default = run(LaunchTemplateName="web")  # $Default is version 1
    latest = run(LaunchTemplateId=tid, Version="$Latest")
    pinned = run(LaunchTemplateId=tid, Version="1")
    assert [i["InstanceType"] for i in (default, latest, pinned)] == ["t2.nano", "t2.micro", "t2.nano"]
    assert {"Key": "role", "Value": "web"} in latest["Tags"] and latest["ImageId"] == ami(ec2)
    ec2.modify_launch_template(LaunchTemplateId=tid, DefaultVersion="2")
    assert run(LaunchTemplateName="web")["InstanceType"] == "t2.micro"
    # explicit parameters win over the template's, as on EC2
    override = ec2.run_instances(MinCount=1, MaxCount=1, InstanceType="t2.small",
                                 LaunchTemplate={"LaunchTemplateName": "web"})["Instances"][0]
    assert override["InstanceType"] == "t2.small"
    # the template's user data really ran in the container
    container = docker_client.containers.list(filters={"label": f"pocketcloud.instance={pinned['InstanceId']}"})[0]
    assert container.exec_run(["cat", "/tmp/v"]).output.decode().strip() == "from-template-v1"
    ec2.delete_launch_template(LaunchTemplateId=tid)
    with pytest.raises(ClientError) as e:
        ec2.describe_launch_templates(LaunchTemplateIds=[tid])
    assert code(e) == "InvalidLaunchTemplateId.NotFound"


def test_bad_templates_are_refused_and_another_accounts_is_not_found(server, user, ec2):
    data = {"ImageId": ami(ec2), "InstanceType": "t2.nano"}
    cases = [({"LaunchTemplateName": "x"}, "InvalidLaunchTemplateName.MalformedException"),
             ({"LaunchTemplateData": {**data, "InstanceType": "x9.huge"}}, "InvalidInstanceType"),
             ({"LaunchTemplateData": {**data, "ImageId": "ami-nope"}}, "InvalidAMIID.Malformed"),
             ({"LaunchTemplateData": {**data, "UserData": "%%%"}}, "InvalidUserData.Malformed"),
             ({"LaunchTemplateData": {**data, "DisableApiTermination": True}}, "InvalidParameterValue"),
             ({"LaunchTemplateData": {**data, "KernelId": "aki-1"}}, "InvalidParameterValue")]
    for change, expected in cases:
        with pytest.raises(ClientError) as e:
            ec2.create_launch_template(**{"LaunchTemplateName": "bad", "LaunchTemplateData": data, **change})
        assert code(e) == expected, change
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    tid = template(ec2, "mine")
    with pytest.raises(ClientError) as e:
        template(ec2, "mine")
    assert code(e) == "InvalidLaunchTemplateName.AlreadyExistsException"
    other = client(server, server.new_user(f"lt-other-{server.port}"), "ec2")
    for call in (lambda: other.describe_launch_templates(LaunchTemplateIds=[tid]),
                 lambda: other.describe_launch_template_versions(LaunchTemplateId=tid),
                 lambda: other.modify_launch_template(LaunchTemplateId=tid, DefaultVersion="1"),
                 lambda: other.delete_launch_template(LaunchTemplateId=tid),
                 lambda: other.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": tid})):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == "InvalidLaunchTemplateId.NotFound"
    assert other.describe_instances()["Reservations"] == [] and other.describe_launch_templates()["LaunchTemplates"] == []
    with pytest.raises(ClientError) as e:  # a version the template does not have launches nothing
        ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": tid, "Version": "7"})
    assert code(e) == "InvalidLaunchTemplateId.VersionNotFound"
    assert ec2.describe_instances()["Reservations"] == []
    raw = base64.b64encode(b"x" * 20000).decode()
    with pytest.raises(ClientError) as e:
        ec2.create_launch_template_version(LaunchTemplateId=tid, LaunchTemplateData={"UserData": raw})
    assert code(e) == "InvalidUserData.Malformed"
    assert ec2.describe_launch_templates(LaunchTemplateIds=[tid])["LaunchTemplates"][0]["LatestVersionNumber"] == 1


def test_a_templates_key_pair_reaches_the_instance_and_a_missing_one_launches_nothing(ec2):
    ec2.create_key_pair(KeyName="lt-key")
    template(ec2, "keyed", KeyName="lt-key")
    inst = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "keyed"})["Instances"][0]
    described = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert inst["KeyName"] == described["KeyName"] == "lt-key"
    template(ec2, "lost-key", KeyName="no-such-key")  # as on EC2: the template is not checked, the launch is
    with pytest.raises(ClientError) as e:
        ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "lost-key"})
    assert code(e) == "InvalidKeyPair.NotFound"
    running = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
    assert running == [inst["InstanceId"]], "the failed launch left nothing"
