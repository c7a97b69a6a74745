"""The metadata app through plain WSGI calls: paths, IMDSv1/v2, tokens bound to the caller."""
import json

from emulator.networks.imds import MetadataApp

MD = {"10.0.1.4": {"instance_id": "i-0123456789abcdef0", "ami_id": "ami-tiny", "instance_type": "t3.micro",
                   "local_ipv4": "10.0.1.4", "mac": "02:00:00:00:00:01", "vpc_id": "vpc-1", "subnet_id": "subnet-1",
                   "subnet_cidr": "10.0.1.0/24", "vpc_cidr": "10.0.0.0/16", "availability_zone": "us-east-1b",
                   "security_groups": ["default", "web"], "security_group_ids": ["sg-1", "sg-2"],
                   "public_keys": {"laptop": "ssh-ed25519 AAAA laptop"}, "user_data": "#!/bin/sh\n",
                   "account_id": "000000000001"},
      "10.0.1.5": {"instance_id": "i-0123456789abcdef1", "local_ipv4": "10.0.1.5", "http_tokens": "required"},
      "10.0.1.6": {"instance_id": "i-0123456789abcdef2", "local_ipv4": "10.0.1.6", "http_endpoint": "disabled"}}


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def call(app, path, ip="10.0.1.4", method="GET", **headers):
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "REMOTE_ADDR": ip,
           **{"HTTP_" + k.upper(): v for k, v in headers.items()}}
    seen = {}
    body = b"".join(app(env, lambda status, hdrs: seen.update(status=status, headers=dict(hdrs))))
    return int(seen["status"].split()[0]), body.decode(), seen["headers"]


def test_paths_cloud_init_and_the_issue_need():
    app = MetadataApp(MD.get)
    assert "latest" in call(app, "/")[1].split()
    assert call(app, "/2021-03-23/meta-data/instance-id")[1] == "i-0123456789abcdef0"
    listing = call(app, "/latest/meta-data/")[1].split("\n")
    assert {"instance-id", "ami-id", "instance-type", "local-ipv4", "hostname", "placement/", "network/",
            "public-keys/", "security-groups", "mac"} <= set(listing)
    assert call(app, "/latest/meta-data/placement/availability-zone")[1] == "us-east-1b"
    assert call(app, "/latest/meta-data/security-groups")[1] == "default\nweb"
    assert call(app, "/latest/meta-data/public-keys/")[1] == "0=laptop"
    assert call(app, "/latest/meta-data/public-keys/0/")[1] == "openssh-key"
    assert call(app, "/latest/meta-data/public-keys/0/openssh-key")[1] == "ssh-ed25519 AAAA laptop\n"
    mac = "/latest/meta-data/network/interfaces/macs/02:00:00:00:00:01/"
    assert call(app, mac + "subnet-id")[1] == "subnet-1"
    assert call(app, mac + "vpc-ipv4-cidr-block")[1] == "10.0.0.0/16"
    assert call(app, "/latest/meta-data/hostname")[1] == "ip-10-0-1-4.ec2.internal"
    assert call(app, "/latest/user-data")[1] == "#!/bin/sh\n"
    doc = json.loads(call(app, "/latest/dynamic/instance-identity/document")[1])
    assert doc["instanceId"] == "i-0123456789abcdef0" and doc["privateIp"] == "10.0.1.4"
    assert call(app, "/latest/meta-data/nope")[0] == 404
    assert call(app, "/latest/meta-data/instance-id/deeper")[0] == 404
    assert call(app, "/banana/meta-data/")[0] == 404
    assert call(app, "/latest/user-data", ip="10.0.1.5", x_aws_ec2_metadata_token=call(
        app, "/latest/api/token", ip="10.0.1.5", method="PUT", x_aws_ec2_metadata_token_ttl_seconds="5")[1])[0] == 404


def test_imdsv2_tokens():
    clock = Clock()
    app = MetadataApp(MD.get, clock=clock)
    status, token, headers = call(app, "/latest/api/token", method="PUT", x_aws_ec2_metadata_token_ttl_seconds="60")
    assert status == 200 and headers["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"] == "60"
    assert call(app, "/latest/meta-data/instance-id", x_aws_ec2_metadata_token=token)[1] == "i-0123456789abcdef0"
    # bound to the caller's address
    assert call(app, "/latest/meta-data/instance-id", ip="10.0.1.5", x_aws_ec2_metadata_token=token)[0] == 401
    # tampered or expired
    assert call(app, "/latest/meta-data/instance-id", x_aws_ec2_metadata_token=token[:-1] + ("1" if token[-1] == "0" else "0"))[0] == 401
    assert call(app, "/latest/meta-data/instance-id", x_aws_ec2_metadata_token="garbage")[0] == 401
    clock.now += 61
    assert call(app, "/latest/meta-data/instance-id", x_aws_ec2_metadata_token=token)[0] == 401
    # another app (a restarted server) does not accept it either
    assert MetadataApp(MD.get).remaining(token, "10.0.1.4") is None


def test_token_requests_are_checked():
    app = MetadataApp(MD.get)
    for ttl in ["", "0", "21601", "-5", "abc"]:
        assert call(app, "/latest/api/token", method="PUT", x_aws_ec2_metadata_token_ttl_seconds=ttl)[0] == 400
    assert call(app, "/latest/api/token", method="PUT")[0] == 400
    assert call(app, "/latest/api/token")[0] == 405
    assert call(app, "/latest/api/token", method="PUT", x_aws_ec2_metadata_token_ttl_seconds="60",
                x_forwarded_for="10.0.1.9")[0] == 403
    assert call(app, "/latest/meta-data/", method="POST")[0] == 405


def test_per_instance_options_and_unknown_callers():
    app = MetadataApp(MD.get)
    assert call(app, "/latest/meta-data/instance-id", ip="10.0.1.5")[0] == 401  # HttpTokens=required
    token = call(app, "/latest/api/token", ip="10.0.1.5", method="PUT", x_aws_ec2_metadata_token_ttl_seconds="9")[1]
    assert call(app, "/latest/meta-data/instance-id", ip="10.0.1.5",
                x_aws_ec2_metadata_token=token)[1] == "i-0123456789abcdef1"
    assert call(app, "/latest/meta-data/instance-id", ip="10.0.1.6")[0] == 403  # endpoint disabled
    assert call(app, "/latest/meta-data/instance-id", ip="10.0.1.99")[0] == 404  # no such instance
