"""Security-group rules that name another group (UserIdGroupPairs), on real networks: a server
admits the members of the group its rule names and nobody else, an instance that joins or leaves
that group (ModifyInstanceAttribute) is admitted or refused without a restart, and another
account's group is not found. Containers only (no VM boot): boto3 against `pocketcloud serve`
with VPC networking on; traffic is `wget` between the instances."""
from __future__ import annotations

import pytest

from .test_ec2 import ec2_for, tiny_ami
from .test_vpc_network import code_of, netcloud, nft_table, reaches, sh, until  # noqa: F401 - netcloud is a fixture

pytestmark = pytest.mark.integration


def _group(ec2, name: str) -> str:
    return ec2.create_security_group(GroupName=name, Description=name)["GroupId"]


def test_a_rule_naming_a_group_admits_its_members_and_nobody_else(netcloud):
    api = netcloud.new_user("net-g")
    ec2 = ec2_for(netcloud, api)
    subnet = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"][0]
    web, client, other = _group(ec2, "web"), _group(ec2, "client"), _group(ec2, "other")
    owner = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]["OwnerId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
        "UserIdGroupPairs": [{"GroupId": client, "Description": "its clients"}]}])
    [perm] = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]["IpPermissions"]
    assert perm["UserIdGroupPairs"] == [{"GroupId": client, "UserId": owner, "Description": "its clients"}]
    assert perm["IpRanges"] == []
    [by_id] = [r for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [web]}])[
        "SecurityGroupRules"] if not r["IsEgress"]]
    assert by_id["ReferencedGroupInfo"]["GroupId"] == client and "CidrIpv4" not in by_id

    ami = tiny_ami(ec2)
    run = lambda sg: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"],  # noqa: E731
                                       SecurityGroupIds=[sg])["Instances"][0]["InstanceId"]
    server, member, outsider = run(web), run(client), run(other)
    try:
        ec2.get_waiter("instance_running").wait(InstanceIds=[server, member, outsider], WaiterConfig={"Delay": 1})
        ip = {i["InstanceId"]: i["PrivateIpAddress"] for r in ec2.describe_instances(
            InstanceIds=[server, member, outsider])["Reservations"] for i in r["Instances"]}
        tags = ec2.describe_instances(InstanceIds=[server])["Reservations"][0]["Instances"][0].get("Tags", [])
        assert not [t for t in tags if t["Key"].startswith("aws:pocketcloud:forward")], \
            "a rule naming a group opens no host forward"
        sh(api, server, "busybox httpd -p 8080 -h /etc")
        assert reaches(api, member, ip[server]), "a member of the named group is admitted"
        assert not reaches(api, outsider, ip[server]), "an instance of another group is not"
        assert set(nft_table(netcloud.label)["sets"][f"members-{client}"]) == {ip[member]}

        # Joining the group admits at once; leaving it refuses at once (no restart of anything).
        ec2.modify_instance_attribute(InstanceId=outsider, Groups=[client])
        assert until(lambda: reaches(api, outsider, ip[server]), 10), "joined: admitted"
        assert set(nft_table(netcloud.label)["sets"][f"members-{client}"]) == {ip[member], ip[outsider]}
        ec2.modify_instance_attribute(InstanceId=outsider, Groups=[other])
        assert until(lambda: not reaches(api, outsider, ip[server]), 10), "left: refused"
        groups = ec2.describe_instances(InstanceIds=[outsider])["Reservations"][0]["Instances"][0]["SecurityGroups"]
        assert [g["GroupId"] for g in groups] == [other]

        # Another account cannot name this account's group, nor put its instance in one of its own.
        b = ec2_for(netcloud, netcloud.new_user("net-g2"))
        theirs = _group(b, "theirs")
        pair = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}
        assert code_of(lambda: b.authorize_security_group_ingress(GroupId=theirs, IpPermissions=[
            {**pair, "UserIdGroupPairs": [{"GroupId": client}]}])) == "InvalidGroup.NotFound"
        assert code_of(lambda: b.authorize_security_group_ingress(GroupId=theirs, IpPermissions=[
            {**pair, "UserIdGroupPairs": [{"GroupId": client, "UserId": owner}]}])) == "InvalidGroup.NotFound"
        assert b.describe_security_groups(GroupIds=[theirs])["SecurityGroups"][0]["IpPermissions"] == []
        assert code_of(lambda: ec2.modify_instance_attribute(InstanceId=outsider, Groups=[theirs])) \
            == "InvalidGroup.NotFound"
        assert code_of(lambda: ec2.delete_security_group(GroupId=client)) == "DependencyViolation"
        assert reaches(api, member, ip[server]), "the refusals changed nothing"
    finally:
        ec2.terminate_instances(InstanceIds=[server, member, outsider])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[server, member, outsider], WaiterConfig={"Delay": 1})
    assert set(nft_table(netcloud.label)["sets"].get(f"members-{client}", [])) == set(), "terminated: no members"
