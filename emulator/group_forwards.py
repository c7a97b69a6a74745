"""Security-group changes as they reach instances: rules checked against the forward cap,
then every member's forwards re-synced (a rule's port gets a host port, a revoked one loses
it). A part of Cloud, which provides the attributes declared below."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, ContextManager

from .accounts import Account
from .compute.driver import Driver, PortForward
from .config import Config
from .errors import NotFound
from .instances import Instance, allocate_ports
from .security_groups import SecurityGroups
from .state import Store

if TYPE_CHECKING:
    from .vpc_network import VpcNetwork


class GroupForwards:
    config: Config
    store: Store
    security_groups: SecurityGroups
    _lock: Callable[[str], ContextManager]
    _port_lock: threading.Lock
    _row: Callable[[str], Instance | None]
    _save: Callable[..., None]
    driver: Callable[[str], Driver]
    describe_instances: Callable[..., list[Instance]]
    network: "VpcNetwork"

    def authorize_ingress(self, caller: Account, group: str, rules: list) -> None:
        with self._lock(f"rules:{caller.id}"):  # two changes cannot each pass the forward check alone
            g = self.security_groups.get(caller.id, group)
            self.security_groups.check_forwards(self.describe_instances(caller), g.id, list(g.rules) + list(rules))
            g = self.security_groups.authorize(caller.id, group, rules)
        self._resync_group(caller, g.id)

    def revoke_ingress(self, caller: Account, group: str, rules: list) -> None:
        g = self.security_groups.revoke(caller.id, group, rules)
        self._resync_group(caller, g.id)

    def delete_security_group(self, caller: Account, group: str) -> None:
        g = self.security_groups.get(caller.id, group)
        in_use = any(g.id in i.details.get("security_groups", []) for i in self.describe_instances(caller)
                     if i.state != "terminated")
        self.security_groups.delete(caller.id, g.id, in_use)

    def _resync_group(self, caller: Account, group_id: str) -> None:
        for inst in self.describe_instances(caller):
            if inst.state != "terminated" and group_id in inst.details.get("security_groups", []):
                with self._lock(inst.id):
                    current = self._row(inst.id)  # it may have been terminated while we waited for its lock
                    if current is not None and current.state != "terminated":
                        self._sync_forwards(current)

    def _sync_forwards(self, inst: Instance) -> None:
        """Make the instance's forwards match its explicit ports plus its groups' rules:
        new rule ports get a host port, revoked ones lose theirs."""
        groups = []
        for gid in inst.details.get("security_groups", []):
            try:
                groups.append(self.security_groups.get(inst.owner, gid))
            except NotFound:
                pass
        explicit = [p for p in inst.ports if not p.get("from_group")]
        wanted = [g for g in SecurityGroups.ports(groups) if g not in {p["guest"] for p in explicit}]
        kept = [p for p in inst.ports if p.get("from_group") and p["guest"] in wanted]
        new = [PortForward(g) for g in wanted if g not in {p["guest"] for p in kept}]
        with self._port_lock, self.store.tx() as c:
            added = [{**p.to_dict(), "from_group": True}
                     for p in allocate_ports(c, tuple(new), self.config.forward_ports)]
        ports = explicit + kept + added
        self._save(inst.id, ports=ports)
        self._apply_forwards(self._row(inst.id))

    def _apply_forwards(self, inst: Instance) -> None:
        if self.network.enabled and inst.details.get("net"):
            self.network.changed()  # on a subnet, forwards are the kernel's DNAT, built from the records
        elif inst.engine_id:
            self.driver(inst.kind).set_forwards(inst.engine_id,
                                                tuple(PortForward(p["guest"], p["host"]) for p in inst.ports))

    def modify_security_group_rules(self, caller: Account, group: str, changes: dict) -> None:
        """Rules keep their ids and take new content; forwards follow changed ingress ports."""
        with self._lock(f"rules:{caller.id}"):
            g = self.security_groups.get(caller.id, group)
            ingress = [changes.get(r.id, r) for r in g.rules]
            self.security_groups.check_forwards(self.describe_instances(caller), g.id, ingress)
            g = self.security_groups.replace_rules(caller.id, group, changes)
        self._resync_group(caller, g.id)
