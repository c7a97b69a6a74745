"""The describe-level EC2 objects through boto3 against a real server and real containers:
default VPC and subnets, network interfaces, root volumes, egress rules and rule ids, tags
on every resource, instance attributes (stop, modify, start), and the bad input around them
(malformed ids, another account's ids: the AWS code, and nothing changes)."""
from __future__ import annotations

import base64
import ipaddress
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from emulator.config import Config
from emulator.networks.ipam import host_taken_cidrs

from .test_ec2 import ec2_for, error_code, tiny_ami

pytestmark = pytest.mark.integration


def code_of(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500, e.value.response
    return error_code(e)


@pytest.fixture
def pair(server):
    """Two fresh accounts (a, b) with their EC2 clients; a's instances go at the end."""
    n = time.monotonic_ns() % 10 ** 9
    a, b = server.new_user(f"va{n}"), server.new_user(f"vb{n}")
    ea, eb = ec2_for(server, a), ec2_for(server, b)
    yield ea, eb
    for client in (ea, eb):
        ids = [i["InstanceId"] for r in client.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
        if ids:
            client.terminate_instances(InstanceIds=ids)


def test_default_vpcs_are_distinct_per_account_and_off_host_routes(pair):
    ea, eb = pair
    [va] = ea.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    [vb] = eb.describe_vpcs()["Vpcs"]
    assert va["IsDefault"] and va["State"] == "available" and va["VpcId"] != vb["VpcId"]
    nets = [ipaddress.ip_network(v["CidrBlock"]) for v in (va, vb)]
    assert all(n.prefixlen == 16 and n.subnet_of(ipaddress.ip_network("10.0.0.0/8")) for n in nets)
    assert not nets[0].overlaps(nets[1])
    taken = {ipaddress.ip_network(c) for c in host_taken_cidrs()}
    for n, v, client in zip(nets, (va, vb), pair):
        assert not n.overlaps(ipaddress.ip_network("10.213.0.0/16"))
        # With VPC networking the cloud itself publishes the VPC's block and puts each of its
        # subnets on a bridge (a route, an address, a Docker network): only those may overlap it.
        own = {n} | {ipaddress.ip_network(s["CidrBlock"]) for s in client.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["Subnets"]}
        assert not [c for c in taken - own if n.overlaps(c)]
    subnets = ea.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [va["VpcId"]]},
                                           {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert all(ipaddress.ip_network(s["CidrBlock"]).subnet_of(nets[0]) and s["CidrBlock"].endswith("/20")
               for s in subnets)
    assert ea.describe_vpc_attribute(VpcId=va["VpcId"], Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"]
    [default_sg] = ea.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert default_sg["VpcId"] == va["VpcId"]
    assert default_sg["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    zones = ea.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])["AvailabilityZones"]
    assert [z["ZoneId"] for z in zones] == ["use1-az1", "use1-az2", "use1-az3"]
    attrs = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
             for a in ea.describe_account_attributes()["AccountAttributes"]}
    assert attrs["default-vpc"] == [va["VpcId"]] and attrs["supported-platforms"] == ["VPC"]

    # another account's VPC and subnets answer like missing ones
    assert code_of(lambda: eb.describe_vpcs(VpcIds=[va["VpcId"]])) == "InvalidVpcID.NotFound"
    assert code_of(lambda: eb.describe_subnets(SubnetIds=[subnets[0]["SubnetId"]])) == "InvalidSubnetID.NotFound"
    assert code_of(lambda: eb.create_tags(Resources=[va["VpcId"]], Tags=[{"Key": "k", "Value": "v"}])) \
        == "InvalidVpcID.NotFound"
    assert ea.describe_vpcs()["Vpcs"][0]["Tags"] == []
    assert code_of(lambda: ea.describe_vpcs(VpcIds=["vpc-123"])) == "InvalidVpcID.Malformed"
    assert code_of(lambda: ea.describe_subnets(SubnetIds=["subnet-zz"])) == "InvalidSubnetID.Malformed"
    # every VPC's block is distinct on the host: another account's is refused, as is a taken subnet block
    assert code_of(lambda: ea.create_vpc(CidrBlock=vb["CidrBlock"])) == "InvalidVpc.Range"
    assert code_of(lambda: ea.create_subnet(VpcId=va["VpcId"], CidrBlock=subnets[0]["CidrBlock"])) \
        == "InvalidSubnet.Conflict"
    assert code_of(lambda: ea.create_default_vpc()) == "DefaultVpcAlreadyExists"
    assert len(ea.describe_vpcs()["Vpcs"]) == 1


def test_instance_placement_interface_and_root_volume(pair, docker_client):
    ea, eb = pair
    subnet_b = ea.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1b"]}])["Subnets"][0]
    inst = ea.run_instances(ImageId=tiny_ami(ea), MinCount=1, MaxCount=1, InstanceType="t2.nano",
                            SubnetId=subnet_b["SubnetId"],
                            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "disk", "Value": "root"}]},
                                               {"ResourceType": "network-interface",
                                                "Tags": [{"Key": "nic", "Value": "eth0"}]}])["Instances"][0]
    iid = inst["InstanceId"]
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert inst["SubnetId"] == subnet_b["SubnetId"] and inst["VpcId"] == subnet_b["VpcId"]
    [nic] = inst["NetworkInterfaces"]
    assert nic["NetworkInterfaceId"].startswith("eni-") and nic["Attachment"]["DeviceIndex"] == 0
    assert nic["Status"] == "in-use" and nic["Groups"] and nic["PrivateIpAddress"] == inst["PrivateIpAddress"]
    [bdm] = inst["BlockDeviceMappings"]
    assert bdm["DeviceName"] == inst["RootDeviceName"] == "/" and bdm["Ebs"]["DeleteOnTermination"]

    # the same ids, every time and from every angle
    desc = ea.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert desc["NetworkInterfaces"][0]["NetworkInterfaceId"] == nic["NetworkInterfaceId"]
    assert desc["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] == bdm["Ebs"]["VolumeId"]
    [eni] = ea.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"]
    assert eni["NetworkInterfaceId"] == nic["NetworkInterfaceId"] and eni["AvailabilityZone"] == "us-east-1b"
    assert eni["Attachment"]["InstanceId"] == iid and eni["TagSet"] == [{"Key": "nic", "Value": "eth0"}]
    [vol] = ea.describe_volumes(Filters=[{"Name": "tag:disk", "Values": ["root"]}])["Volumes"]
    assert vol["VolumeId"] == bdm["Ebs"]["VolumeId"] and vol["State"] == "in-use" and vol["Size"] >= 1
    assert vol["Attachments"][0]["InstanceId"] == iid and vol["VolumeType"] == "gp3"
    assert ea.describe_instances(Filters=[{"Name": "subnet-id", "Values": [subnet_b["SubnetId"]]}])["Reservations"]
    assert not ea.describe_instances(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])["Reservations"]

    # another account sees none of it
    assert code_of(lambda: eb.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])) \
        == "InvalidNetworkInterfaceID.NotFound"
    assert code_of(lambda: eb.describe_volumes(VolumeIds=[vol["VolumeId"]])) == "InvalidVolume.NotFound"
    assert code_of(lambda: eb.create_tags(Resources=[vol["VolumeId"]], Tags=[{"Key": "x", "Value": "y"}])) \
        == "InvalidVolume.NotFound"
    assert code_of(lambda: eb.run_instances(ImageId=tiny_ami(eb), MinCount=1, MaxCount=1,
                                            SubnetId=subnet_b["SubnetId"])) == "InvalidSubnetID.NotFound"
    assert eb.describe_instances()["Reservations"] == []
    assert code_of(lambda: ea.describe_volumes(VolumeIds=["vol-1"])) == "InvalidVolumeID.Malformed"
    assert code_of(lambda: ea.describe_network_interfaces(NetworkInterfaceIds=["eni-x"])) \
        == "InvalidNetworkInterfaceID.Malformed"

    # terminated: its interface and DeleteOnTermination root volume are gone, with their tags
    ea.terminate_instances(InstanceIds=[iid])
    assert code_of(lambda: ea.describe_volumes(VolumeIds=[vol["VolumeId"]])) == "InvalidVolume.NotFound"
    assert ea.describe_network_interfaces()["NetworkInterfaces"] == []
    assert ea.describe_tags(Filters=[{"Name": "resource-type", "Values": ["volume", "network-interface"]}])["Tags"] == []
    gone = ea.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert gone["NetworkInterfaces"] == [] and gone["BlockDeviceMappings"] == []
    assert gone["Placement"]["AvailabilityZone"] == "us-east-1b"  # where it ran
    assert not docker_client.containers.list(all=True, filters={"name": f"pc-{iid}"})


def test_tags_on_every_resource_type(pair):
    ea, eb = pair
    vpc = ea.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = ea.describe_subnets()["Subnets"][0]["SubnetId"]
    sg = ea.create_security_group(GroupName="tagged", Description="t")["GroupId"]
    key = ea.create_key_pair(KeyName="tagged", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "made", "Value": "with-key"}]}])["KeyPairId"]
    rule = ea.authorize_security_group_ingress(
        GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8000,
                                    "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "app"}]}],
        TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": [{"Key": "rule", "Value": "app"}]}],
    )["SecurityGroupRules"][0]
    assert rule["SecurityGroupRuleId"].startswith("sgr-") and rule["Tags"] == [{"Key": "rule", "Value": "app"}]
    ids = [vpc, subnet, sg, key, rule["SecurityGroupRuleId"]]
    ea.create_tags(Resources=ids, Tags=[{"Key": "course", "Value": "cloud-101"}])
    tags = ea.describe_tags(Filters=[{"Name": "key", "Values": ["course"]}])["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"]) for t in tags) == sorted(zip(
        ids, ["vpc", "subnet", "security-group", "key-pair", "security-group-rule"]))
    assert [v["VpcId"] for v in ea.describe_vpcs(Filters=[{"Name": "tag:course", "Values": ["cloud-*"]}])["Vpcs"]] == [vpc]
    assert [s["SubnetId"] for s in ea.describe_subnets(Filters=[{"Name": "tag-key", "Values": ["course"]}])["Subnets"]] \
        == [subnet]
    assert [g["GroupId"] for g in ea.describe_security_groups(
        Filters=[{"Name": "tag:course", "Values": ["cloud-101"]}])["SecurityGroups"]] == [sg]
    keys = ea.describe_key_pairs(Filters=[{"Name": "tag:made", "Values": ["with-key"]}], IncludePublicKey=True)
    assert keys["KeyPairs"][0]["KeyPairId"] == key and keys["KeyPairs"][0]["PublicKey"].startswith("ssh-ed25519")
    assert "PublicKey" not in ea.describe_key_pairs(KeyPairIds=[key])["KeyPairs"][0]
    ea.delete_tags(Resources=[vpc, subnet], Tags=[{"Key": "course"}])
    assert {t["ResourceId"] for t in ea.describe_tags(Filters=[{"Name": "key", "Values": ["course"]}])["Tags"]} \
        == {sg, key, rule["SecurityGroupRuleId"]}
    assert eb.describe_tags()["Tags"] == []
    for bad, code in (("sg-00000000000000000", "InvalidGroup.NotFound"), ("key-00000000000000000", "InvalidKeyPair.NotFound"),
                      ("sgr-00000000000000000", "InvalidSecurityGroupRuleId.NotFound"), ("nope-1", "InvalidID"),
                      (sg, "InvalidGroup.NotFound")):
        client = eb if bad == sg else ea
        assert code_of(lambda: client.create_tags(Resources=[bad], Tags=[{"Key": "k", "Value": "v"}])) == code
    assert code_of(lambda: ea.create_tags(Resources=[vpc], Tags=[{"Key": "aws:x", "Value": "v"}])) \
        == "InvalidParameterValue"
    ea.delete_security_group(GroupId=sg)
    ea.delete_key_pair(KeyName="tagged")
    assert ea.describe_tags()["Tags"] == []


def test_egress_rules_rule_ids_and_modify(pair):
    ea, eb = pair
    sg = ea.create_security_group(GroupName="rules", Description="rules")["GroupId"]
    g = ea.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
    assert g["IpPermissionsEgress"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                         "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]
    ea.revoke_security_group_egress(GroupId=sg, IpPermissions=[{"IpProtocol": "-1",
                                                                "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    out = ea.authorize_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert [r["IsEgress"] for r in out["SecurityGroupRules"]] == [True, True]
    assert code_of(lambda: ea.authorize_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])) \
        == "InvalidPermission.Duplicate"
    ing = ea.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ing_id = ing["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    listed = ea.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
    assert sorted((r["IsEgress"], r["IpProtocol"], r["FromPort"]) for r in listed) == \
        [(False, "tcp", 8080), (True, "icmp", -1), (True, "udp", 53)]

    # a running container in the group: changing the rule's port moves its forward
    user_data = ("#!/bin/sh\nmkdir -p /www; echo moved > /www/index.html\n"
                 "printf '#!/bin/sh\\nhttpd -p 9090 -h /www\\n' > /etc/rc.local; chmod +x /etc/rc.local\n")
    iid = ea.run_instances(ImageId=tiny_ami(ea), MinCount=1, MaxCount=1, SecurityGroupIds=[sg],
                           UserData=user_data)["Instances"][0]["InstanceId"]

    def forwards():
        inst = ea.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        return {t["Key"].rsplit(":", 1)[1]: t["Value"] for t in inst["Tags"] if t["Key"].startswith("aws:pocketcloud:forward:")}

    assert set(forwards()) == {"8080"}
    ea.modify_security_group_rules(GroupId=sg, SecurityGroupRules=[{"SecurityGroupRuleId": ing_id, "SecurityGroupRule": {
        "IpProtocol": "tcp", "FromPort": 9090, "ToPort": 9090, "CidrIpv4": "0.0.0.0/0", "Description": "moved"}}])
    [moved] = ea.describe_security_group_rules(SecurityGroupRuleIds=[ing_id])["SecurityGroupRules"]
    assert (moved["FromPort"], moved["Description"]) == (9090, "moved")
    port = forwards()["9090"].split(":")[1]
    assert set(forwards()) == {"9090"}
    deadline = time.monotonic() + 20
    while True:
        try:
            assert requests.get(f"http://127.0.0.1:{port}/", timeout=2).text.strip() == "moved"
            break
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    ea.revoke_security_group_ingress(GroupId=sg, SecurityGroupRuleIds=[ing_id])
    assert forwards() == {}

    # another account's group and rules: NotFound, nothing changes
    assert code_of(lambda: eb.revoke_security_group_egress(GroupId=sg, SecurityGroupRuleIds=[
        out["SecurityGroupRules"][0]["SecurityGroupRuleId"]])) == "InvalidGroup.NotFound"
    assert code_of(lambda: eb.describe_security_group_rules(SecurityGroupRuleIds=[
        out["SecurityGroupRules"][0]["SecurityGroupRuleId"]])) == "InvalidSecurityGroupRuleId.NotFound"
    assert code_of(lambda: ea.revoke_security_group_egress(GroupId=sg, SecurityGroupRuleIds=["sgr-1"])) \
        == "InvalidSecurityGroupRuleId.Malformed"
    theirs = eb.create_security_group(GroupName="theirs", Description="another account's")["GroupId"]
    assert code_of(lambda: ea.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": theirs}]}])) \
        == "InvalidGroup.NotFound"
    assert code_of(lambda: ea.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])) \
        == "UnsupportedOperation"
    # A rule naming a group is recorded with networking off too, and forwards nothing from the host.
    itself = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": sg}]}]
    ea.authorize_security_group_ingress(GroupId=sg, IpPermissions=itself)
    assert forwards() == {}
    ea.revoke_security_group_ingress(GroupId=sg, IpPermissions=itself)
    eb.delete_security_group(GroupId=theirs)
    udp_any = [{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    if Config().vpc_networking == "on":  # the server's setting (it inherits this environment)
        # Rules are kernel rules between instances: any protocol, as AWS takes it; only TCP is forwarded.
        ea.authorize_security_group_ingress(GroupId=sg, IpPermissions=udp_any)
        assert forwards() == {}
        ea.revoke_security_group_ingress(GroupId=sg, IpPermissions=udp_any)
    else:  # rules only open host forwards, which are TCP
        assert code_of(lambda: ea.authorize_security_group_ingress(GroupId=sg, IpPermissions=udp_any)) \
            == "InvalidParameterValue"
    assert len(ea.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]) == 2
    ea.terminate_instances(InstanceIds=[iid])
    ea.delete_security_group(GroupId=sg)


def test_instance_attributes_stop_modify_start(pair, docker_client):
    ea, eb = pair
    iid = ea.run_instances(ImageId=tiny_ami(ea), MinCount=1, MaxCount=1, InstanceType="t2.nano",
                           UserData="#!/bin/sh\necho first\n")["Instances"][0]["InstanceId"]
    attr = lambda name: ea.describe_instance_attribute(InstanceId=iid, Attribute=name)  # noqa: E731
    assert attr("instanceType")["InstanceType"] == {"Value": "t2.nano"}
    assert attr("disableApiTermination")["DisableApiTermination"] == {"Value": False}
    assert attr("disableApiStop")["DisableApiStop"] == {"Value": False}
    assert attr("instanceInitiatedShutdownBehavior")["InstanceInitiatedShutdownBehavior"] == {"Value": "stop"}
    assert attr("userData")["UserData"]["Value"]  # base64, decoded by the test below
    assert attr("rootDeviceName")["RootDeviceName"] == {"Value": "/"}
    assert attr("groupSet")["Groups"][0]["GroupName"] == "default"
    assert ea.describe_instance_credit_specifications(InstanceIds=[iid])["InstanceCreditSpecifications"] == \
        [{"InstanceId": iid, "CpuCredits": "standard"}]

    assert code_of(lambda: ea.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.micro"})) \
        == "IncorrectInstanceState"  # as on AWS: stop first
    assert code_of(lambda: ea.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})) \
        == "UnsupportedOperation"
    ea.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})  # the default: fine
    assert code_of(lambda: ea.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.micro"},
                                                        EbsOptimized={"Value": False})) == "InvalidParameterCombination"
    assert code_of(lambda: eb.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.micro"})) \
        == "InvalidInstanceID.NotFound"
    assert code_of(lambda: eb.describe_instance_attribute(InstanceId=iid, Attribute="userData")) \
        == "InvalidInstanceID.NotFound"
    assert code_of(lambda: ea.describe_instance_attribute(InstanceId=iid, Attribute="bogus")) == "InvalidParameterValue"

    ea.stop_instances(InstanceIds=[iid])
    ea.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    assert code_of(lambda: ea.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "x9.huge"})) \
        == "InvalidInstanceType"
    ea.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.micro"})
    ea.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"#!/bin/sh\necho second\n"})
    ea.start_instances(InstanceIds=[iid])
    ea.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1})
    limits = docker_client.containers.get(f"pc-{iid}").attrs["HostConfig"]
    assert (limits["Memory"], limits["NanoCpus"]) == (1024 ** 3, 2 * 10 ** 9)  # t3.micro, enforced
    assert ea.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["InstanceType"] == "t3.micro"
    assert base64.b64decode(attr("userData")["UserData"]["Value"]) == b"#!/bin/sh\necho second\n"
    assert ea.describe_instance_credit_specifications(InstanceIds=[iid])["InstanceCreditSpecifications"][0][
        "CpuCredits"] == "unlimited"
    ea.terminate_instances(InstanceIds=[iid])


def test_run_instances_refuses_what_it_cannot_honour(pair):
    ea, _ = pair
    ami = tiny_ami(ea)
    cases = [({"IamInstanceProfile": {"Name": "role"}}, "UnsupportedOperation"),
             ({"Monitoring": {"Enabled": True}}, "UnsupportedOperation"),
             ({"DisableApiTermination": True}, "UnsupportedOperation"),
             ({"PrivateIpAddress": "10.0.0.10"}, "UnsupportedOperation"),
             ({"BlockDeviceMappings": [{"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}]},
              "UnsupportedOperation"),
             ({"BlockDeviceMappings": [{"DeviceName": "/", "Ebs": {"VolumeSize": 50}}]}, "UnsupportedOperation"),
             ({"Placement": {"AvailabilityZone": "us-east-1z"}}, "InvalidParameterValue"),
             ({"SubnetId": "subnet-00000000000000000"}, "InvalidSubnetID.NotFound"),
             ({"SecurityGroupIds": ["sg-00000000000000000"]}, "InvalidGroup.NotFound"),
             ({"KeyName": "no-such-key"}, "InvalidKeyPair.NotFound")]
    for extra, code in cases:
        assert code_of(lambda: ea.run_instances(ImageId=ami, MinCount=1, MaxCount=1, **extra)) == code, extra
    assert ea.describe_instances()["Reservations"] == []
    # AWS's defaults, sent explicitly as tools do, are accepted
    inst = ea.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t2.nano",
                            Monitoring={"Enabled": False}, DisableApiTermination=False, EbsOptimized=False,
                            InstanceInitiatedShutdownBehavior="stop",
                            CreditSpecification={"CpuCredits": "standard"},
                            CapacityReservationSpecification={"CapacityReservationPreference": "open"},
                            MetadataOptions={"HttpEndpoint": "enabled", "HttpTokens": "optional"})["Instances"][0]
    assert inst["MetadataOptions"]["HttpTokens"] == "optional"
    ea.terminate_instances(InstanceIds=[inst["InstanceId"]])


def test_ec2_error_document_over_the_wire(server, user):
    body = "Action=DescribeVolumes&Version=2016-11-15&VolumeId.1=vol-bad"
    req = AWSRequest(method="POST", url=server.url + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(user.key_id, user.secret), "ec2", "us-east-1").add_auth(req)
    r = requests.post(server.url + "/", data=body, headers=dict(req.headers), timeout=30)
    assert r.status_code == 400
    root = ET.fromstring(r.text)
    assert root.tag == "Response" and root.find("./Errors/Error/Code").text == "InvalidVolumeID.Malformed"
    assert root.find("./RequestID").text == r.headers["x-amzn-RequestId"]



def test_bad_input_for_the_new_actions_changes_nothing(pair):
    ea, eb = pair
    sg = ea.create_security_group(GroupName="bad-input", Description="x")["GroupId"]
    [egress] = ea.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
    vpc = ea.describe_vpcs()["Vpcs"][0]["VpcId"]
    before = (ea.describe_security_groups(GroupIds=[sg])["SecurityGroups"], ea.describe_tags()["Tags"])
    long = "x" * 300
    cases = [
        (lambda: ea.describe_vpc_attribute(VpcId=vpc, Attribute="enableEverything"), "InvalidParameterValue"),
        (lambda: eb.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport"), "InvalidVpcID.NotFound"),
        (lambda: ea.describe_availability_zones(ZoneNames=["us-east-1q"]), "InvalidParameterValue"),
        (lambda: ea.describe_account_attributes(AttributeNames=["max-everything"]), "InvalidParameterValue"),
        (lambda: ea.describe_instance_types(InstanceTypes=["x9.huge"]), "InvalidInstanceType"),
        (lambda: ea.describe_instance_types(Filters=[{"Name": "gpu", "Values": ["1"]}]), "InvalidParameterValue"),
        (lambda: ea.describe_regions(RegionNames=["mars-north-1"]), "InvalidParameterValue"),
        (lambda: ea.describe_instance_credit_specifications(InstanceIds=["i-00000000000000000"]),
         "InvalidInstanceID.NotFound"),
        (lambda: ea.describe_instance_attribute(InstanceId="i-123", Attribute="userData"), "InvalidInstanceID.Malformed"),
        (lambda: ea.modify_security_group_rules(GroupId=sg, SecurityGroupRules=[{
            "SecurityGroupRuleId": "sgr-00000000000000000", "SecurityGroupRule": {
                "IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "CidrIpv4": "0.0.0.0/0"}}]),
         "InvalidSecurityGroupRuleId.NotFound"),
        (lambda: eb.modify_security_group_rules(GroupId=sg, SecurityGroupRules=[{
            "SecurityGroupRuleId": egress["SecurityGroupRuleId"], "SecurityGroupRule": {
                "IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}}]), "InvalidGroup.NotFound"),
        (lambda: ea.modify_security_group_rules(GroupId=sg, SecurityGroupRules=[{
            "SecurityGroupRuleId": egress["SecurityGroupRuleId"], "SecurityGroupRule": {
                "IpProtocol": "-1", "CidrIpv4": "10.0.0.300/8"}}]), "InvalidParameterValue"),
        (lambda: ea.update_security_group_rule_descriptions_egress(GroupId=sg, SecurityGroupRuleDescriptions=[
            {"SecurityGroupRuleId": egress["SecurityGroupRuleId"], "Description": long}]), "InvalidParameterValue"),
        (lambda: ea.authorize_security_group_egress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]),
         "UnsupportedOperation"),
        (lambda: ea.authorize_security_group_egress(GroupId=sg, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 500, "ToPort": 400, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]),
         "InvalidParameterValue"),
        (lambda: ea.create_tags(Resources=[vpc], Tags=[{"Key": long, "Value": "v"}]), "InvalidParameterValue"),
        (lambda: ea.create_tags(Resources=["ami-00000000000000000"], Tags=[{"Key": "k", "Value": "v"}]),
         "InvalidAMIID.NotFound"),  # no image of the account's own has that id
        (lambda: ea.create_tags(Resources=[tiny_ami(ea)], Tags=[{"Key": "k", "Value": "v"}]),
         "UnsupportedOperation"),  # the catalog's images are shared
        (lambda: ea.create_key_pair(KeyName="rsa", KeyType="rsa"), "UnsupportedOperation"),
        (lambda: ea.describe_key_pairs(KeyPairIds=["key-1"]), "InvalidKeyPair.Malformed"),
        (lambda: ea.create_security_group(GroupName="other-vpc", Description="x",
                                          VpcId=eb.describe_vpcs()["Vpcs"][0]["VpcId"]), "InvalidVpcID.NotFound"),
    ]
    for call, code in cases:
        assert code_of(call) == code
    assert (ea.describe_security_groups(GroupIds=[sg])["SecurityGroups"], ea.describe_tags()["Tags"]) == before
    assert {g["GroupName"] for g in ea.describe_security_groups()["SecurityGroups"]} == {"default", "bad-input"}
    assert ea.describe_key_pairs()["KeyPairs"] == []
    ea.delete_security_group(GroupId=sg)
