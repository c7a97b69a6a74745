"""IPAM: VPC and subnet blocks, reserved addresses, the EC2 error codes for bad ranges."""
import pytest

from emulator.errors import AlreadyExists, InvalidParameter, QuotaExceeded
from emulator.networks import ipam


def test_vpc_blocks_skip_everything_taken():
    taken = ["10.0.0.0/16", "10.1.5.0/24", "172.17.0.0/16"]
    assert ipam.allocate_vpc_cidr(taken) == "10.2.0.0/16"
    assert ipam.allocate_vpc_cidr([], pool="10.64.0.0/10") == "10.64.0.0/16"
    with pytest.raises(QuotaExceeded):
        ipam.allocate_vpc_cidr(["10.64.0.0/10"], pool="10.64.0.0/10")


@pytest.mark.parametrize("cidr, code", [
    ("10.0.0.0/8", "InvalidVpc.Range"),         # larger than /16
    ("10.0.0.0/29", "InvalidVpc.Range"),        # smaller than /28
    ("8.8.0.0/16", "InvalidVpc.Range"),         # not private
    ("10.9.0.0/16", "InvalidVpc.Range"),        # overlaps a taken block
    ("10.0.0.1/16", "InvalidParameterValue"),   # host bits set
    ("banana", "InvalidParameterValue"),
    ("fd00::/64", "InvalidParameterValue"),
    (None, "InvalidParameterValue"),
    ("10.0.0.0/16" + "0" * 100, "InvalidParameterValue"),
])
def test_bad_vpc_blocks(cidr, code):
    with pytest.raises(InvalidParameter) as e:
        ipam.validate_vpc_cidr(cidr, taken=["10.9.128.0/17"])
    assert e.value.code == code


def test_good_vpc_block():
    assert ipam.validate_vpc_cidr("192.168.4.0/24", taken=["10.0.0.0/16"]) == "192.168.4.0/24"


def test_subnets_inside_their_vpc_without_overlap():
    vpc = "10.20.0.0/16"
    assert ipam.allocate_subnet_cidr(vpc) == "10.20.0.0/20"
    assert ipam.allocate_subnet_cidr(vpc, ["10.20.0.0/20", "10.20.16.0/20"]) == "10.20.32.0/20"
    assert ipam.validate_subnet_cidr(vpc, "10.20.1.0/24", ["10.20.2.0/24"]) == "10.20.1.0/24"
    with pytest.raises(InvalidParameter) as e:
        ipam.validate_subnet_cidr(vpc, "10.21.1.0/24")
    assert e.value.code == "InvalidSubnet.Range"
    with pytest.raises(InvalidParameter) as e:
        ipam.validate_subnet_cidr(vpc, "10.20.1.0/29")
    assert e.value.code == "InvalidSubnet.Range"
    with pytest.raises(InvalidParameter) as e:
        ipam.validate_subnet_cidr(vpc, "10.20.0.0/23", ["10.20.1.0/24"])
    assert e.value.code == "InvalidSubnet.Conflict"


def test_addresses_skip_the_five_aws_reserves():
    sub = "10.20.1.0/28"
    assert ipam.reserved(sub) == ["10.20.1.0", "10.20.1.1", "10.20.1.2", "10.20.1.3", "10.20.1.15"]
    assert ipam.gateway(sub) == "10.20.1.1"
    assert ipam.allocate_address(sub) == "10.20.1.4"
    assert ipam.allocate_address(sub, ["10.20.1.4"]) == "10.20.1.5"
    full = [f"10.20.1.{i}" for i in range(4, 15)]
    with pytest.raises(QuotaExceeded):
        ipam.allocate_address(sub, full)
    assert ipam.describe(sub, ["10.20.1.4"])["available"] == 10
    for bad in ["10.20.1.1", "10.20.1.15", "10.20.2.4", "x"]:
        with pytest.raises(InvalidParameter):
            ipam.validate_address(sub, bad)
    with pytest.raises(AlreadyExists) as e:
        ipam.validate_address(sub, "10.20.1.4", ["10.20.1.4"])
    assert e.value.code == "InvalidIPAddress.InUse"
