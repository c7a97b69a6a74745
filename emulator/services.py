"""The use cases every front end calls: REST, EC2, S3, CLI and the web console.

`Cloud` holds the store, accounts, catalog and drivers, built from one Config; nothing
here is global, so tests build as many clouds as they like.
"""
from __future__ import annotations

import hashlib
import json
import logging
import platform
import threading
import time
from contextlib import nullcontext
from dataclasses import replace
from functools import cached_property
from typing import ContextManager, Iterable

from . import __version__, exec_hints, validation
from .accounts import Account, Accounts
from .amis import MachineImageUseCases
from .billing import Billing, record_state
from .compute import hostinfo
from .compute.driver import Driver, EngineInstance, ExecResult, LaunchSpec, PortForward
from .compute.engines import build_drivers
from .compute.types import DEFAULT_TYPE, INSTANCE_TYPES
from .config import Config
from .errors import BackendUnavailable, CloudError, Forbidden, InvalidParameter, InvalidState, NotFound, QuotaExceeded
from .images import Images
from .instance_attributes import InstanceAttributes
from .instances import KINDS, STATES, Instance, KeyedLocks, Slots, allocate_ports
from .journal import Journal
from .group_forwards import GroupForwards
from .keypairs import KeyPairs
from .launching import Launching
from .reconcile import Reconciling
from .security_groups import DEFAULT as DEFAULT_GROUP, SecurityGroups
from .state import Store
from .storage import Storage
from .tags import Tags
from .volumes import Volumes
from .volumes.service import VolumeUseCases
from .vpc_network import VpcNetwork
from .vpc_ops import VpcOps
from .vpcs import Vpcs

log = logging.getLogger("pocketcloud")

__all__ = ["Cloud", "Instance", "KINDS", "STATES"]


def _fingerprint(count: int, params: dict) -> str:
    """What a launch asked for, so a client token can tell a retry from another request."""
    canonical = json.dumps({"count": count, **params}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class Cloud(Reconciling, Launching, GroupForwards, VolumeUseCases, MachineImageUseCases, VpcOps, InstanceAttributes):
    """Every use case, over one store and the engines' drivers. The reconcile pass lives in
    reconcile.py, the engine half of a launch in launching.py, instance records and their
    bookkeeping in instances.py."""

    def __init__(self, config: Config, drivers: dict[str, Driver] | None = None):
        self.config = config
        config.home.mkdir(parents=True, exist_ok=True)
        config.home.chmod(0o700)
        self.store = Store(config.db_path)
        self.accounts = Accounts(self.store, config.secret_key_path)
        if drivers is None:
            tiny_vm = self.store.one("SELECT ref FROM images WHERE name='tiny' AND kind='vm'")
            drivers = build_drivers(config, probe_image=tiny_vm["ref"] if tiny_vm else None)
        self.drivers = drivers
        self.images = Images(self.store, config.recipes_dir, config.cache_dir, drivers.get("container"))
        self.journal = Journal(self.store)  # this server's boot id: its operations are live
        self.storage = Storage(self.store, self.accounts, config, boot_id=self.journal.boot_id)
        self.keypairs = KeyPairs(self.store)
        self.security_groups = SecurityGroups(self.store, max_rules=config.max_rules_per_group, vpcs=self.vpcs)
        self.network = VpcNetwork(config, self.store, lambda: getattr(drivers.get("container"), "client", None))
        self.security_groups.on_change = self.vpcs.on_change = self.network.changed
        self._locks = KeyedLocks()
        self._exec_slots = Slots(config.exec_per_account, config.exec_total)
        self._port_lock = threading.Lock()
        self.billing = Billing(self)  # billing hook: meter, bills, budgets (its loop starts with the server's)
        self.register_block_source()

    # -- bootstrap -----------------------------------------------------------------
    def bootstrap(self) -> Account:
        return self.accounts.ensure_admin(self.config.credentials_path)

    # -- helpers -----------------------------------------------------------------
    def _lock(self, key: str) -> ContextManager:
        """Held while one operation changes an instance (or a client token's reservation)."""
        return self._locks.hold(key)

    def driver(self, kind: str) -> Driver:
        d = self.drivers.get(kind)
        if d is None:
            raise BackendUnavailable(f"no engine for kind {kind!r} is configured in this cloud")
        return d

    def _row(self, instance_id: str) -> Instance | None:
        row = self.store.one("SELECT * FROM instances WHERE id=?", (instance_id,))
        return Instance.from_row(row) if row else None

    def _save(self, inst_id: str, **fields) -> None:
        fields["updated_at"] = time.time()
        for k in ("ports", "tags", "details"):
            if k in fields:
                fields[k] = json.dumps(fields[k])
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.store.tx() as c:
            c.execute(f"UPDATE instances SET {sets} WHERE id=?", (*fields.values(), inst_id))
            if "state" in fields:  # billing hook: the meter bills running time to this transition
                record_state(c, inst_id, fields["state"], fields["updated_at"])
        if fields.get("state") == "terminated":  # from every path: its volumes go or stay (DeleteOnTermination)
            self.release_volumes(inst_id)

    def _apply_engine(self, inst: Instance, e: EngineInstance, **extra) -> Instance:
        details = {**inst.details, "engine": e.details}
        if e.state == "running" and not details.get("launched_at"):
            details["launched_at"] = time.time()
        # Forwards are ours (host ports fixed at create), so the record keeps them, not the engine.
        self._save(inst.id, state=e.state, engine_id=e.engine_id, private_ip=e.private_ip or inst.private_ip,
                   details=details, **extra)
        return self.network.follow(inst, self._row(inst.id))  # rules follow the interface and the state

    # -- catalog -----------------------------------------------------------------
    def instance_types(self) -> list[dict]:
        return [t.to_dict() for t in INSTANCE_TYPES.values()]

    def list_images(self) -> list[dict]:
        return self.images.list()

    # -- instances -----------------------------------------------------------------
    def run_instance(self, caller: Account, *, image: str, kind: str = "container", type: str | None = None,
                     name: str | None = None, ports=None, user_data=None, tags=None,
                     key_name: str | None = None, ssh_keys: Iterable[str] = (),
                     security_groups: list[str] | None = None, extra: dict | None = None,
                     block_devices: list[dict] | None = None) -> Instance:
        if kind not in KINDS:
            raise InvalidParameter(f"kind must be one of {', '.join(KINDS)}")
        type = type or DEFAULT_TYPE
        itype = INSTANCE_TYPES.get(type) if isinstance(type, str) else None
        if itype is None:
            raise InvalidParameter(
                f"unknown instance type {str(type)[:40]!r}; see GET /api/v1/instance-types",
                code="InvalidInstanceType")
        image_row = self.launch_image(caller.id, image, kind)
        inst_id = validation.new_instance_id()
        name = validation.name(name) if name is not None else inst_id
        clean_ports = validation.ports(ports)
        clean_tags = validation.tags(tags)
        clean_ud = validation.user_data(user_data)
        ssh_keys = list(ssh_keys)
        if key_name is not None:
            ssh_keys.append(self.keypairs.get(caller.id, key_name).public_key)
        disks = self.plan_launch_disks(caller, image, kind, block_devices)  # checked, room too: nothing made yet
        chosen = bool(security_groups)
        if not chosen and self.network.enabled:
            # On a subnet a port of no group sends and admits nothing: as EC2 does, REST's launch gets the VPC's default
            security_groups = [DEFAULT_GROUP]
        # A rule change checks the forward cap against the account's instances under this lock:
        # the launch reads its groups' rules and records itself under it too, or both could pass.
        with self._lock(f"rules:{caller.id}") if security_groups else nullcontext():
            groups = self.security_groups.for_launch(caller.id, security_groups, self.vpcs.subnet_for(
                caller.id, self.config.region, (extra or {}).get("subnet_id")).vpc_id) if security_groups else []
            asked = {p.guest for p in clean_ports}
            if kind == "vm" and json.loads(image_row["details"] or "{}").get("ssh") and 22 not in asked and not chosen:
                # SSH is how a VM is reached: forwarded by default, unless security groups decide (EC2)
                clean_ports += (PortForward(22),)
                asked.add(22)
            group_ports = [g for g in SecurityGroups.ports(groups) if g not in asked]
            clean_ports += tuple(PortForward(g) for g in group_ports)
            if len(clean_ports) > 32:
                raise InvalidParameter("at most 32 forwarded ports per instance (explicit ports and security group rules)")
            driver = self.driver(kind)
            details = {"image_ref": image_row["ref"], **(extra or {}),
                       **({"root_gib": disks.root_gib} if disks.root_gib else {})}
            hv = driver.hypervisor()
            if hv:
                details.update(hypervisor=hv["mode"], hypervisor_reason=hv["reason"])
            if groups:
                details["security_groups"] = [g.id for g in groups]
            spec = LaunchSpec(
                instance_id=inst_id, owner=caller.id, name=name, image_ref=image_row["ref"], type=itype,
                ports=clean_ports, user_data=clean_ud, hostname=name if name != inst_id else inst_id,
                ssh_keys=tuple(ssh_keys), auto_ssh=False, root_gib=disks.root_gib,
            )
            driver.preflight(spec)
            subnet = self.network.enabled and self.vpcs.subnet_for(caller.id, self.config.region, details.get("subnet_id"))
            now = time.time()
            with self._port_lock, self.store.tx() as c:
                count = c.execute(
                    "SELECT COUNT(*) FROM instances WHERE owner=? AND state!='terminated'", (caller.id,)).fetchone()[0]
                if count >= caller.max_instances:
                    raise QuotaExceeded(
                        f"account {caller.name} already has {count} instances (limit {caller.max_instances}); "
                        "terminate one or ask an admin to raise the limit", code="InstanceLimitExceeded")
                clean_ports = allocate_ports(c, clean_ports, self.config.forward_ports)
                c.execute(
                    "INSERT INTO instances (id, owner, name, kind, image, type, state, ports, user_data, tags, key_name,"
                    " details, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (inst_id, caller.id, name, kind, image, type, "pending",
                     json.dumps([{**p.to_dict(), **({"from_group": True} if p.guest in group_ports else {})}
                                 for p in clean_ports]), clean_ud, json.dumps(clean_tags), key_name,
                     json.dumps(details), now, now),
                )
                net = self.network.reserve(c, caller.id, inst_id, kind, subnet)  # None: the engine's own network
                op_id = self.journal.open_in(c, inst_id, "launch", step="record")
        self.fault("record")
        self.prepare_launch_volumes(caller, inst_id, details.get("subnet_id"), disks, op_id)
        # Containers get the ports asked for at create published by dockerd; group ports are
        # applied after launch, as forwards that can change while the instance runs.
        launch_ports = clean_ports if kind == "vm" else tuple(p for p in clean_ports if p.guest not in group_ports)
        spec = replace(spec, ports=() if net else launch_ports, network=net,  # on a subnet: forwards are kernel DNAT
                       on_step=self._step_hook(inst_id, op_id, kind == "vm"))
        if kind == "vm":  # minutes under TCG: answer pending at once, as EC2 does; GET shows the boot
            accepted = self._row(inst_id)  # the answer is the state at acceptance, whatever the worker does next
            self._launch_async(inst_id, op_id, driver, spec)
            return accepted
        try:
            return self._launch_on_engine(inst_id, driver, spec, group_ports)
        except BaseException:
            # The driver removed what it created; the record must go too: a failed create leaves nothing.
            inst = self._row(inst_id)
            if inst is not None and inst.engine_id:  # it ran: terminated, as any instance that ran
                self.terminate_instance(caller, inst_id)
            else:
                self.drop_launch_volumes(inst_id)
                with self.store.tx() as c:
                    c.execute("DELETE FROM instances WHERE id=?", (inst_id,))
                self.network.changed()  # on a subnet its address was pinned (and served) before the engine ran
            raise
        finally:
            self.journal.finish(op_id)

    def run_instances(self, caller: Account, count: int = 1, client_token: str | None = None,
                      extra: dict | None = None, **kwargs) -> tuple[str, list[Instance]]:
        """Launch `count` instances as one reservation. With a client token the call is
        idempotent: the same token returns the first call's reservation, never a second launch;
        the same token with other parameters is refused (IdempotentParameterMismatch, as EC2).
        `extra` goes into each record's details from the start (e.g. the chosen subnet)."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 20:
            raise InvalidParameter("the instance count must be between 1 and 20")
        if client_token is not None and (not isinstance(client_token, str) or not 0 < len(client_token) <= 64):
            raise InvalidParameter("ClientToken must be 1-64 ASCII characters", code="InvalidParameterValue")
        with (self._lock(f"token:{caller.id}:{client_token}") if client_token else nullcontext()):
            if client_token:
                rows = self.store.query(
                    "SELECT * FROM instances WHERE owner=? AND json_extract(details, '$.client_token')=? "
                    "ORDER BY created_at", (caller.id, client_token))
                asked = _fingerprint(count, {**kwargs, **(extra or {})})
                if rows:
                    found = [Instance.from_row(r) for r in rows]
                    if found[0].details.get("client_token_params", asked) != asked:
                        raise InvalidParameter(f"the client token {client_token!r} was used by a request with "
                                               "other parameters", code="IdempotentParameterMismatch")
                    return found[0].details.get("reservation_id", ""), found
            reservation = "r-" + validation.new_instance_id()[2:]
            extra = {**(extra or {}), "reservation_id": reservation,
                     **({"client_token": client_token, "client_token_params": asked} if client_token else {})}
            launched: list[Instance] = []
            self.plan_launch_disks(caller, kwargs.get("image"), kwargs.get("kind", "container"),
                                   kwargs.get("block_devices"), count)  # room for all, before the first
            try:
                for i in range(count):
                    launched.append(self.run_instance(caller, extra={**extra, "launch_index": i}, **kwargs))
            except BaseException:
                for inst in launched:  # all or nothing: a half reservation is a leak, its volumes too
                    for vol in self.volumes.attached_to(inst.id):
                        self.volumes.update(vol.id, delete_on_termination=1)
                    self.terminate_instance(caller, inst.id)
                raise
            return reservation, launched

    def create_tags(self, caller: Account, ids: list[str], tags: dict[str, str]) -> None:
        clean = validation.tags(tags)
        insts = [self.get_instance(caller, i) for i in ids]
        for inst in insts:
            merged = {**inst.tags, **clean}
            validation.tags(merged)
            self._save(inst.id, tags=merged)

    def delete_tags(self, caller: Account, ids: list[str], tags: dict[str, str | None]) -> None:
        insts = [self.get_instance(caller, i) for i in ids]
        for inst in insts:
            kept = {k: v for k, v in inst.tags.items() if not (k in tags and tags[k] in (None, v))}
            self._save(inst.id, tags=kept)

    def get_instance(self, caller: Account, instance_id: str) -> Instance:
        validation.instance_id(instance_id)
        inst = self._row(instance_id)
        # Another account's instance answers exactly like a missing one.
        if inst is None or (inst.owner != caller.id):
            raise NotFound(f"instance {instance_id} does not exist", code="InvalidInstanceID.NotFound")
        return inst

    def describe_instances(self, caller: Account, *, ids: list[str] | None = None, state: str | None = None,
                           kind: str | None = None, tags: dict[str, str | None] | None = None,
                           all_accounts: bool = False) -> list[Instance]:
        self._forget_expired()
        if all_accounts and not caller.is_admin:
            raise Forbidden("only admins can list every account's instances")
        sql, params = "SELECT * FROM instances WHERE 1=1", []
        if not all_accounts:
            sql += " AND owner=?"
            params.append(caller.id)
        if ids:
            for i in ids:
                validation.instance_id(i)
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            params += ids
        if state:
            if state not in STATES:
                raise InvalidParameter(f"state must be one of {', '.join(STATES)}")
            sql += " AND state=?"
            params.append(state)
        if kind:
            if kind not in KINDS:
                raise InvalidParameter(f"kind must be one of {', '.join(KINDS)}")
            sql += " AND kind=?"
            params.append(kind)
        rows = [Instance.from_row(r) for r in self.store.query(sql + " ORDER BY created_at", tuple(params))]
        for k, v in (tags or {}).items():
            rows = [r for r in rows if k in r.tags and (v is None or r.tags[k] == v)]
        return rows

    def _forget_expired(self) -> None:
        cutoff = time.time() - self.config.terminated_ttl
        if self.store.one("SELECT 1 FROM instances WHERE state='terminated' AND terminated_at < ?", (cutoff,)):
            with self.store.tx() as c:
                c.execute("DELETE FROM instances WHERE state='terminated' AND terminated_at < ?", (cutoff,))
                c.execute("DELETE FROM operations WHERE instance_id NOT IN (SELECT id FROM instances)")

    def _transition(self, caller: Account, instance_id: str, action: str) -> tuple[Instance, str]:
        """Run one lifecycle action under the instance's lock; returns (instance, previous state)."""
        inst = self.get_instance(caller, instance_id)
        with self._lock(instance_id):
            inst = self._row(instance_id)
            if action in ("terminate", "start", "stop") and inst.state != "terminated":
                with self.journal.track(instance_id, action):
                    return self._transition_locked(inst, action)
            return self._transition_locked(inst, action)

    def _transition_locked(self, inst: Instance, action: str) -> tuple[Instance, str]:
        """The action itself; the caller holds the instance's lock and journals the operation."""
        prev = inst.state
        driver = self.driver(inst.kind)
        if action == "terminate":
            if prev == "terminated":
                return inst, prev
            self._save(inst.id, state="shutting-down")
            if inst.engine_id:
                driver.terminate(inst.engine_id)
            # The reason is the termination's, whatever stopped the instance before (EC2 does the same).
            self._save(inst.id, state="terminated", terminated_at=time.time(),
                       state_reason="Client.UserInitiatedShutdown: terminated by its owner")
            self.network.changed()  # its address, pinning, forwards and DHCP reservation go
            return self._row(inst.id), prev
        if prev == "terminated":
            raise InvalidState(f"instance {inst.id} is terminated and cannot be {action}ed",
                               code="IncorrectInstanceState")
        if action == "start":
            if prev == "running":
                return inst, prev
            if prev != "stopped":
                raise InvalidState(f"instance {inst.id} is {prev}; only a stopped instance can be started",
                                   code="IncorrectInstanceState")
            self._save(inst.id, state="pending")
            if inst.kind == "vm" and inst.details.get("net"):
                # Its tap pinned and its DHCP reservation served before the guest's first frame, as
                # at launch: the start waits for the guest to be ready, which it never is unpinned.
                self.network.changed()
            try:
                return self._apply_engine(inst, driver.start(inst.engine_id), state_reason=""), prev
            except CloudError:
                self._refresh(inst)
                raise
        if action == "stop":
            if prev == "stopped":
                return inst, prev
            if prev == "pending" and self.launching_now(inst.id):
                raise InvalidState(f"instance {inst.id} is still launching; stop it once it runs, or terminate it",
                                   code="IncorrectInstanceState")
            if prev not in ("running", "pending"):
                raise InvalidState(f"instance {inst.id} is {prev}; only a running instance can be stopped",
                                   code="IncorrectInstanceState")
            self._save(inst.id, state="stopping")
            try:
                e = driver.stop(inst.engine_id, self.config.stop_timeout)
            except CloudError:
                self._refresh(inst)
                raise
            return self._apply_engine(inst, e, state_reason="Client.UserInitiatedShutdown: stopped by its owner"), prev
        if action == "reboot":
            if prev != "running":
                raise InvalidState(f"instance {inst.id} is {prev}; only a running instance can be rebooted",
                                   code="IncorrectInstanceState")
            return self._apply_engine(inst, driver.reboot(inst.engine_id, self.config.stop_timeout)), prev
        raise InvalidParameter(f"unknown action {action!r}")

    def _refresh(self, inst: Instance) -> None:
        e = self.driver(inst.kind).inspect(inst.engine_id) if inst.engine_id else None
        if e is not None:
            self._apply_engine(inst, e)

    def start_instance(self, caller: Account, instance_id: str) -> tuple[Instance, str]:
        return self._transition(caller, instance_id, "start")

    def stop_instance(self, caller: Account, instance_id: str) -> tuple[Instance, str]:
        return self._transition(caller, instance_id, "stop")

    def reboot_instance(self, caller: Account, instance_id: str) -> tuple[Instance, str]:
        return self._transition(caller, instance_id, "reboot")

    def terminate_instance(self, caller: Account, instance_id: str) -> tuple[Instance, str]:
        return self._transition(caller, instance_id, "terminate")

    def console_output(self, caller: Account, instance_id: str, tail: int = 1000) -> str:
        inst = self.get_instance(caller, instance_id)
        if inst.state == "terminated" or not inst.engine_id:
            return inst.details.get("last_console", "")
        return self.driver(inst.kind).console(inst.engine_id, tail)

    def exec_command(self, caller: Account, instance_id: str, command, timeout: int = 60) -> ExecResult:
        inst = self.get_instance(caller, instance_id)
        cmd = validation.command(command)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 600:
            raise InvalidParameter("timeout must be an integer number of seconds between 1 and 600")
        if inst.state != "running":
            raise InvalidState(f"instance {inst.id} is {inst.state}; exec needs a running instance",
                               code="IncorrectInstanceState")
        # Refused at once past the account's (or the server's) share: each exec holds a server
        # thread until it ends, so queueing them would block every other caller as surely.
        with self._exec_slots.hold(caller.id):
            res = self.driver(inst.kind).exec(inst.engine_id, cmd, timeout, self.config.exec_max_output)
        return exec_hints.explain(res)

    def instance_internals(self, caller: Account, instance_id: str) -> dict:
        inst = self.get_instance(caller, instance_id)
        if inst.state == "terminated" or not inst.engine_id:
            raise InvalidState(f"instance {inst.id} is {inst.state}: nothing runs behind it any more",
                               code="IncorrectInstanceState")
        driver = self.driver(inst.kind)
        started = time.perf_counter()
        data = driver.internals(inst.engine_id)
        return {"instance_id": inst.id, "kind": inst.kind, "state": inst.state, "type": INSTANCE_TYPES[inst.type].to_dict(),
                "forwards": inst.ports, **data, "vpc_path": self.network.path(inst),
                "read_in_ms": round((time.perf_counter() - started) * 1000, 1)}

    # -- accounts -----------------------------------------------------------------
    def create_account(self, caller: Account, name, role="user", max_instances=20):
        if not caller.is_admin:
            raise Forbidden("only an admin can create accounts")
        return self.accounts.create(name, role=role, max_instances=max_instances)

    def list_accounts(self, caller: Account) -> list[Account]:
        if not caller.is_admin:
            return [caller]
        return self.accounts.list()

    # -- info -----------------------------------------------------------------------
    def info(self) -> dict:
        engines = {}
        for kind, d in self.drivers.items():
            ok, desc = d.available()
            entry = {"available": ok, "engine": d.name, "description": desc}
            if ok:
                try:
                    entry.update(d.info())
                except CloudError as e:
                    entry.update(available=False, description=str(e))
            engines[kind] = entry
        return {
            "pocketcloud": __version__,
            "region": self.config.region,
            "endpoint": self.config.endpoint_url,
            "engines": engines,
            "hypervisor": self.hypervisor_info(),
            "storage": self.storage.describe(),
            "host": {**hostinfo.host(), "machine": platform.machine(), "python": platform.python_version()},
            "schema_version": self.store.schema_version,
        }

    def hypervisor_info(self) -> dict:
        vm = self.drivers.get("vm")
        hv = vm.hypervisor() if vm is not None else None
        return hv or {"mode": self.config.hypervisor, "in_use": None, "reason": "no VM engine configured yet"}

    # -- EC2 breadth (issue 13): placement, tags on every resource, instance attributes -------
    @cached_property
    def vpcs(self) -> Vpcs:
        return Vpcs(self.store)

    @cached_property
    def volumes(self) -> Volumes:
        return Volumes(self.store)

    @cached_property
    def resource_tags(self) -> Tags:
        return Tags(self.store)
