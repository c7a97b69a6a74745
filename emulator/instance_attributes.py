"""Changes to an existing instance's placement and attributes (EC2's ModifyInstanceAttribute,
RunInstances into a subnet). A part of Cloud, which provides the attributes declared below."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable, ContextManager

from .accounts import Account
from .compute.driver import Driver
from .compute.types import INSTANCE_TYPES
from .config import Config
from .errors import InvalidParameter, InvalidState, QuotaExceeded
from .instances import MAX_FORWARDS, Instance
from .resize import resize
from . import validation
from .security_groups import SecurityGroups
from .state import Store
from .vpcs import Vpcs

if TYPE_CHECKING:
    from .vpc_network import VpcNetwork


class InstanceAttributes:
    config: Config
    vpcs: Vpcs
    _lock: Callable[[str], ContextManager]
    _row: Callable[[str], Instance | None]
    _save: Callable[..., None]
    driver: Callable[[str], Driver]
    get_instance: Callable[..., Instance]
    run_instances: Callable[..., tuple[str, list[Instance]]]
    store: Store
    security_groups: SecurityGroups
    network: "VpcNetwork"
    _sync_forwards: Callable[[Instance], None]

    def run_instances_in_subnet(self, caller: Account, *, subnet_id: str | None = None, zone: str | None = None,
                                **kwargs) -> tuple[str, list[Instance]]:
        """run_instances, placed in a subnet of the caller's (checked before anything launches;
        recorded with the instance, so its interface is made there whoever looks first)."""
        subnet = self.vpcs.subnet_for(caller.id, self.config.region, subnet_id, zone)
        return self.run_instances(caller, extra={"subnet_id": subnet.id}, **kwargs)

    def modify_instance(self, caller: Account, instance_id: str, *, type: str | None = None,
                        user_data: str | None = None) -> Instance:
        """Change a stopped instance's type (on its engine too) or its user data, as EC2 allows.
        User data runs once per instance, as on AWS: the new value is what the instance's
        metadata serves, not a second run."""
        itype = None
        if type is not None:
            itype = INSTANCE_TYPES.get(type) if isinstance(type, str) else None
            if itype is None:
                raise InvalidParameter(f"unknown instance type {str(type)[:40]!r}", code="InvalidInstanceType")
        clean_ud = validation.user_data(user_data) if user_data is not None else None
        self.get_instance(caller, instance_id)
        with self._lock(instance_id):
            inst = self._row(instance_id)
            if inst.state != "stopped":
                raise InvalidState(f"The instance '{inst.id}' is not in the 'stopped' state (it is {inst.state})",
                                   code="IncorrectInstanceState")
            if itype is not None and itype.name != inst.type:
                resize(self.driver(inst.kind), inst.engine_id, itype)
                self._save(inst.id, type=itype.name)
            if clean_ud is not None:
                self._save(inst.id, user_data=clean_ud)
        return self._row(instance_id)

    def instance_vpc(self, owner: str, instance_id: str) -> str:
        """The VPC of the instance's primary interface (its account's default VPC before it has one)."""
        row = self.store.one("SELECT s.vpc_id FROM network_interfaces n JOIN subnets s ON s.id = n.subnet_id "
                             "WHERE n.instance_id=? ORDER BY n.created_at LIMIT 1", (instance_id,))
        return row["vpc_id"] if row else self.vpcs.default(owner).id

    def modify_instance_groups(self, caller: Account, instance_id: str, group_ids: list[str]) -> Instance:
        """ModifyInstanceAttribute GroupId: the instance's groups become these (of its VPC). Its
        forwards follow the new rules, and it joins and leaves the groups' member sets, so rules
        naming those groups admit or refuse it from now on."""
        if not group_ids:
            raise InvalidParameter("give at least one security group (GroupId)", code="MissingParameter")
        inst = self.get_instance(caller, instance_id)
        groups = [self.security_groups.get(caller.id, g) for g in dict.fromkeys(group_ids)]
        vpc = self.instance_vpc(caller.id, inst.id)
        for g in groups:
            if g.vpc_id != vpc:
                raise InvalidParameter(f"Security group {g.id} and instance {inst.id} belong to different networks",
                                       code="InvalidParameter")
        with self._lock(f"rules:{caller.id}"), self._lock(inst.id):
            inst = self._row(inst.id)
            if inst.state == "terminated":
                raise InvalidState(f"instance {inst.id} is terminated", code="IncorrectInstanceState")
            ports = {p["guest"] for p in inst.ports if not p.get("from_group")} | set(SecurityGroups.ports(groups))
            if len(ports) > MAX_FORWARDS:
                raise QuotaExceeded(f"instance {inst.id} would have {len(ports)} forwarded ports with these groups "
                                    f"(at most {MAX_FORWARDS}); nothing was changed",
                                    code="ForwardedPortLimitExceeded")
            with self.store.tx() as c:  # json_set: the network's own fields of details stay as they are
                c.execute("UPDATE instances SET details=json_set(details, '$.security_groups', json(?)) WHERE id=?",
                          (json.dumps([g.id for g in groups]), inst.id))
            self._sync_forwards(self._row(inst.id))
        self.network.changed()  # member sets: rules naming its old and new groups follow
        return self._row(inst.id)
