"""CreateVpc, DeleteVpc, CreateSubnet, DeleteSubnet: a record and its real network, together.

A create records first (the IPAM checks run inside the write transaction, so two creates cannot
take one block) and then makes the host match the records; if that fails, the record is dropped
and the host matched again, which removes whatever the failed attempt made - nothing is left
half-created. A VPC is recorded with its default security group in one transaction, so a kill -9 at any
point leaves both or neither; whatever the host lacks after a crash, the restart's sync makes.
A delete checks the records (instances in the subnet) and the kernel (anything still attached
to the bridge) before it removes anything. A part of Cloud.
"""
from __future__ import annotations

from typing import Callable

from .accounts import Account
from .config import Config
from .errors import CloudError, EngineError, InvalidState
from .networks import bridges, host
from .networks.model import bridge_name
from .vpc_network import VpcNetwork
from .vpcs import Subnet, Vpc, Vpcs


class VpcOps:
    config: Config
    vpcs: Vpcs
    network: VpcNetwork
    fault: Callable[..., None]

    def _made(self, vpc_id: str = "", subnet_id: str = "") -> None:
        try:
            failed = self.network.sync().get("failed", {})
            if subnet_id in failed:  # another subnet failing is the reconcile pass's to retry, not this create's
                raise EngineError(f"the network of {subnet_id} could not be made: {failed[subnet_id]}")
        except CloudError:
            self.vpcs.forget(vpc_id=vpc_id, subnet_id=subnet_id)
            self.network.changed()  # removes what the failed attempt made
            raise

    def create_vpc(self, caller: Account, cidr) -> Vpc:
        vpc = self.vpcs.create(caller.id, cidr)
        self.fault("record", op="vpc")  # crash tests: recorded, the host not yet matched
        self._made(vpc_id=vpc.id)
        return vpc

    def delete_vpc(self, caller: Account, vpc_id) -> Vpc:
        vpc = self.vpcs.delete(caller.id, vpc_id)
        self.network.changed()
        return vpc

    def create_subnet(self, caller: Account, vpc_id, cidr, zone=None) -> Subnet:
        subnet = self.vpcs.create_subnet(caller.id, self.config.region, vpc_id, cidr, zone)
        self.fault("record", op="subnet")
        self._made(subnet_id=subnet.id)
        return subnet

    def delete_subnet(self, caller: Account, subnet_id) -> Subnet:
        subnet = self.vpcs.subnets(caller.id, self.config.region, [subnet_id])[0]
        name = bridge_name(subnet.id)
        if self.network.enabled and host.link_exists(name) and bridges.ports(name):
            raise InvalidState(f"The subnet '{subnet.id}' has dependencies and cannot be deleted "
                               f"(interfaces {', '.join(bridges.ports(name)[:5])} on {name})",
                               code="DependencyViolation")
        subnet = self.vpcs.delete_subnet(caller.id, self.config.region, subnet.id)
        self.network.changed()
        return subnet
