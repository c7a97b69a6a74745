"""Changes to an existing instance's placement and attributes (EC2's ModifyInstanceAttribute,
RunInstances into a subnet). A part of Cloud, which provides the attributes declared below."""
from __future__ import annotations

from typing import Callable, ContextManager

from .accounts import Account
from .compute.driver import Driver
from .compute.types import INSTANCE_TYPES
from .config import Config
from .errors import InvalidParameter, InvalidState
from .instances import Instance
from .resize import resize
from . import validation
from .vpcs import Vpcs


class InstanceAttributes:
    config: Config
    vpcs: Vpcs
    _lock: Callable[[str], ContextManager]
    _row: Callable[[str], Instance | None]
    _save: Callable[..., None]
    driver: Callable[[str], Driver]
    get_instance: Callable[..., Instance]
    run_instances: Callable[..., tuple[str, list[Instance]]]

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
