"""The use cases every front end calls: REST, EC2, S3, CLI and the web console.

`Cloud` holds the store, accounts, catalog and drivers, built from one Config; nothing
here is global, so tests build as many clouds as they like.
"""
from __future__ import annotations

import json
import logging
import platform
import random
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from . import __version__, exec_hints, validation
from .accounts import Account, Accounts
from .billing import Billing, record_state
from .compute import hostinfo
from .compute.docker_driver import DockerDriver
from .compute.forwarder import Forwarder
from .compute.libvirt_driver import LibvirtDriver
from .compute.driver import Driver, EngineInstance, ExecResult, LaunchSpec, PortForward
from .compute.types import DEFAULT_TYPE, INSTANCE_TYPES, InstanceType
from .config import Config
from .errors import (AlreadyExists, BackendUnavailable, CloudError, Forbidden, InvalidParameter, InvalidState,
                     NotFound, QuotaExceeded)
from .images import Images
from .keypairs import KeyPairs
from .security_groups import SecurityGroups
from .state import Store
from .storage import Storage

log = logging.getLogger("pocketcloud")

STATES = ("pending", "running", "stopping", "stopped", "shutting-down", "terminated")
KINDS = ("container", "vm")
HOST_PORT_RANGE = (20000, 39999)


@dataclass
class Instance:
    id: str
    owner: str
    name: str
    kind: str
    image: str
    type: str
    state: str
    state_reason: str
    engine_id: str | None
    ports: list[dict]
    user_data: str
    tags: dict[str, str]
    private_ip: str | None
    key_name: str | None
    details: dict
    created_at: float
    updated_at: float
    terminated_at: float | None

    @classmethod
    def from_row(cls, row) -> "Instance":
        d = dict(row)
        for k, default in (("ports", "[]"), ("tags", "{}"), ("details", "{}")):
            d[k] = json.loads(d[k] or default)
        return cls(**d)

    def to_dict(self) -> dict:
        itype = INSTANCE_TYPES.get(self.type)
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "image": self.image,
            "type": self.type,
            "vcpus": itype.vcpus if itype else None,
            "memory_mib": itype.memory_mib if itype else None,
            "state": self.state,
            "state_reason": self.state_reason,
            "owner": self.owner,
            "ports": self.ports,
            "private_ip": self.private_ip,
            "tags": self.tags,
            "key_name": self.key_name,
            "engine": {"name": "docker" if self.kind == "container" else "libvirt", "id": self.engine_id},
            "created_at": _iso(self.created_at),
            "launched_at": _iso(self.details.get("launched_at")),
            "terminated_at": _iso(self.terminated_at),
            "has_user_data": bool(self.user_data),
            **({"hypervisor": {"mode": self.details.get("hypervisor"), "reason": self.details.get("hypervisor_reason")}}
               if self.kind == "vm" else {}),
        }


def _iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


@contextmanager
def _nolock():
    yield


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Cloud:
    def __init__(self, config: Config, drivers: dict[str, Driver] | None = None):
        self.config = config
        config.home.mkdir(parents=True, exist_ok=True)
        config.home.chmod(0o700)
        self.store = Store(config.db_path)
        self.accounts = Accounts(self.store, config.secret_key_path)
        if drivers is None:
            drivers = self._default_drivers(config)
        self.drivers = drivers
        self.images = Images(self.store, config.recipes_dir, config.cache_dir, drivers.get("container"))
        self.storage = Storage(self.store, self.accounts, config)
        self.keypairs = KeyPairs(self.store)
        self.security_groups = SecurityGroups(self.store)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._port_lock = threading.Lock()
        self.started_at = time.time()
        self.billing = Billing(self)  # billing hook: meter, bills, budgets (its loop starts with the server's)

    def _default_drivers(self, config: Config) -> dict[str, Driver]:
        # One forwarder for both kinds: every 127.0.0.1 forward lives in this process.
        forwarder = Forwarder()
        tiny_vm = self.store.one("SELECT ref FROM images WHERE name='tiny' AND kind='vm'")
        return {
            "container": DockerDriver(config.docker_url, config.instance_label, forwarder=forwarder),
            "vm": LibvirtDriver(config.libvirt_uri, config.instance_label, config.home / "vms",
                                hypervisor=config.hypervisor, network_name=config.vm_network,
                                network_cidr=config.vm_cidr, forwarder=forwarder,
                                probe_image=tiny_vm["ref"] if tiny_vm else None),
        }

    # -- bootstrap -----------------------------------------------------------------
    def bootstrap(self) -> Account:
        return self.accounts.ensure_admin(self.config.credentials_path)

    # -- helpers -----------------------------------------------------------------
    def _lock(self, instance_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(instance_id, threading.Lock())

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

    def _apply_engine(self, inst: Instance, e: EngineInstance, **extra) -> Instance:
        details = {**inst.details, "engine": e.details}
        if e.state == "running" and not details.get("launched_at"):
            details["launched_at"] = time.time()
        # Forwards are ours (host ports fixed at create), so the record keeps them, not the engine.
        self._save(inst.id, state=e.state, engine_id=e.engine_id, private_ip=e.private_ip or inst.private_ip,
                   details=details, **extra)
        return self._row(inst.id)

    # -- catalog -----------------------------------------------------------------
    def instance_types(self) -> list[dict]:
        return [t.to_dict() for t in INSTANCE_TYPES.values()]

    def list_images(self) -> list[dict]:
        return self.images.list()

    # -- instances -----------------------------------------------------------------
    def run_instance(self, caller: Account, *, image: str, kind: str = "container", type: str | None = None,
                     name: str | None = None, ports=None, user_data=None, tags=None,
                     key_name: str | None = None, ssh_keys: Iterable[str] = (),
                     security_groups: list[str] | None = None, extra: dict | None = None) -> Instance:
        if kind not in KINDS:
            raise InvalidParameter(f"kind must be one of {', '.join(KINDS)}")
        type = type or DEFAULT_TYPE
        itype = INSTANCE_TYPES.get(type) if isinstance(type, str) else None
        if itype is None:
            raise InvalidParameter(
                f"unknown instance type {str(type)[:40]!r}; see GET /api/v1/instance-types",
                code="InvalidInstanceType")
        image_row = self.images.resolve(image, kind)
        inst_id = validation.new_instance_id()
        name = validation.name(name) if name is not None else inst_id
        clean_ports = validation.ports(ports)
        clean_tags = validation.tags(tags)
        clean_ud = validation.user_data(user_data)
        ssh_keys = list(ssh_keys)
        if key_name is not None:
            ssh_keys.append(self.keypairs.get(caller.id, key_name).public_key)
        groups = [self.security_groups.get(caller.id, g) for g in security_groups] if security_groups else []
        asked = {p.guest for p in clean_ports}
        if kind == "vm" and json.loads(image_row["details"] or "{}").get("ssh") and 22 not in asked and not groups:
            # SSH is how a VM is reached: forwarded by default, unless security groups decide (EC2)
            clean_ports += (PortForward(22),)
            asked.add(22)
        group_ports = [g for g in SecurityGroups.ports(groups) if g not in asked]
        clean_ports += tuple(PortForward(g) for g in group_ports)
        if len(clean_ports) > 32:
            raise InvalidParameter("at most 32 forwarded ports per instance (explicit ports and security group rules)")
        driver = self.driver(kind)
        details = {"image_ref": image_row["ref"], **(extra or {})}
        if hasattr(driver, "hypervisor"):
            hv = driver.hypervisor()
            details.update(hypervisor=hv["mode"], hypervisor_reason=hv["reason"])
        if groups:
            details["security_groups"] = [g.id for g in groups]
        now = time.time()
        with self._port_lock, self.store.tx() as c:
            count = c.execute(
                "SELECT COUNT(*) FROM instances WHERE owner=? AND state!='terminated'", (caller.id,)).fetchone()[0]
            if count >= caller.max_instances:
                raise QuotaExceeded(
                    f"account {caller.name} already has {count} instances (limit {caller.max_instances}); "
                    "terminate one or ask an admin to raise the limit", code="InstanceLimitExceeded")
            clean_ports = self._allocate_ports(c, clean_ports)
            c.execute(
                "INSERT INTO instances (id, owner, name, kind, image, type, state, ports, user_data, tags, key_name,"
                " details, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (inst_id, caller.id, name, kind, image, type, "pending",
                 json.dumps([{**p.to_dict(), **({"from_group": True} if p.guest in group_ports else {})}
                             for p in clean_ports]), clean_ud, json.dumps(clean_tags), key_name,
                 json.dumps(details), now, now),
            )
        # Containers get the ports asked for at create published by dockerd; group ports are
        # applied after launch, as forwards that can change while the instance runs.
        launch_ports = clean_ports if kind == "vm" else tuple(p for p in clean_ports if p.guest not in group_ports)
        spec = LaunchSpec(
            instance_id=inst_id, owner=caller.id, name=name, image_ref=image_row["ref"], type=itype,
            ports=launch_ports, user_data=clean_ud, hostname=name if name != inst_id else inst_id,
            ssh_keys=tuple(ssh_keys), auto_ssh=False,
        )
        try:
            engine = driver.launch(spec)
        except BaseException:
            # The driver removed what it created; the record must go too: a failed create leaves nothing.
            with self.store.tx() as c:
                c.execute("DELETE FROM instances WHERE id=?", (inst_id,))
            raise
        inst = self._apply_engine(self._row(inst_id), engine)
        if group_ports and kind != "vm":
            try:
                self._apply_forwards(inst)
            except BaseException:
                self.terminate_instance(caller, inst_id)
                raise
        return inst

    def restore_forwards(self) -> None:
        """Forwards live in this process: after a restart, open them again."""
        vm = self.drivers.get("vm")
        if vm is not None and hasattr(vm, "restore_forwards") and vm.available()[0]:
            vm.restore_forwards()
        for inst in [Instance.from_row(r) for r in self.store.query(
                "SELECT * FROM instances WHERE kind='container' AND state!='terminated'")]:
            if any(p.get("from_group") for p in inst.ports):
                try:
                    self._apply_forwards(inst)
                except CloudError as e:
                    log.warning("could not restore the forwards of %s: %s", inst.id, e)

    def run_instances(self, caller: Account, count: int = 1, client_token: str | None = None,
                      **kwargs) -> tuple[str, list[Instance]]:
        """Launch `count` instances as one reservation. With a client token the call is
        idempotent: the same token returns the first call's reservation, never a second launch."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 20:
            raise InvalidParameter("the instance count must be between 1 and 20")
        if client_token is not None and (not isinstance(client_token, str) or not 0 < len(client_token) <= 64):
            raise InvalidParameter("ClientToken must be 1-64 ASCII characters", code="InvalidParameterValue")
        with (self._lock(f"token:{caller.id}:{client_token}") if client_token else _nolock()):
            if client_token:
                rows = self.store.query(
                    "SELECT * FROM instances WHERE owner=? AND json_extract(details, '$.client_token')=? "
                    "ORDER BY created_at", (caller.id, client_token))
                if rows:
                    found = [Instance.from_row(r) for r in rows]
                    return found[0].details.get("reservation_id", ""), found
            reservation = "r-" + validation.new_instance_id()[2:]
            extra = {"reservation_id": reservation, **({"client_token": client_token} if client_token else {})}
            launched: list[Instance] = []
            try:
                for i in range(count):
                    launched.append(self.run_instance(caller, extra={**extra, "launch_index": i}, **kwargs))
            except BaseException:
                for inst in launched:  # all or nothing: a half reservation is a leak
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

    # -- security groups ------------------------------------------------------------
    def authorize_ingress(self, caller: Account, group: str, rules: list) -> None:
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
                    self._sync_forwards(self._row(inst.id))

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
            added = [{**p.to_dict(), "from_group": True} for p in self._allocate_ports(c, tuple(new))]
        ports = explicit + kept + added
        self._save(inst.id, ports=ports)
        self._apply_forwards(self._row(inst.id))

    def _apply_forwards(self, inst: Instance) -> None:
        driver = self.driver(inst.kind)
        if hasattr(driver, "set_forwards") and inst.engine_id:
            driver.set_forwards(inst.engine_id, tuple(PortForward(p["guest"], p["host"]) for p in inst.ports))

    def _allocate_ports(self, c, ports: tuple[PortForward, ...]) -> tuple[PortForward, ...]:
        """Fix a host port for every forward now, so it stays the same across stop/start."""
        used = set()
        for row in c.execute("SELECT ports FROM instances WHERE state!='terminated'"):
            used.update(p.get("host") for p in json.loads(row[0]))
        out = []
        for p in ports:
            if p.host is not None:
                if p.host in used or not _port_free(p.host):
                    raise AlreadyExists(f"host port {p.host} is already in use; pick another or omit it",
                                        code="PortInUse")
                used.add(p.host)
                out.append(p)
                continue
            lo, hi = HOST_PORT_RANGE
            start = random.randint(lo, hi)
            for i in range(hi - lo + 1):
                cand = lo + (start - lo + i) % (hi - lo + 1)
                if cand not in used and _port_free(cand):
                    used.add(cand)
                    out.append(PortForward(p.guest, cand, p.protocol))
                    break
            else:
                raise QuotaExceeded("no free host port left for a forward")
        return tuple(out)

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

    def _transition(self, caller: Account, instance_id: str, action: str) -> tuple[Instance, str]:
        """Run one lifecycle action under the instance's lock; returns (instance, previous state)."""
        inst = self.get_instance(caller, instance_id)
        with self._lock(instance_id):
            inst = self._row(instance_id)
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
                try:
                    return self._apply_engine(inst, driver.start(inst.engine_id), state_reason=""), prev
                except CloudError:
                    self._refresh(inst)
                    raise
            if action == "stop":
                if prev == "stopped":
                    return inst, prev
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
        return exec_hints.explain(self.driver(inst.kind).exec(inst.engine_id, cmd, timeout))

    def instance_internals(self, caller: Account, instance_id: str) -> dict:
        inst = self.get_instance(caller, instance_id)
        if inst.state == "terminated" or not inst.engine_id:
            raise InvalidState(f"instance {inst.id} is {inst.state}: nothing runs behind it any more",
                               code="IncorrectInstanceState")
        driver = self.driver(inst.kind)
        started = time.perf_counter()
        data = driver.internals(inst.engine_id)
        return {"instance_id": inst.id, "kind": inst.kind, "state": inst.state, "type": INSTANCE_TYPES[inst.type].to_dict(),
                "forwards": inst.ports, **data, "read_in_ms": round((time.perf_counter() - started) * 1000, 1)}

    # -- reconcile -----------------------------------------------------------------
    def reconcile(self) -> dict:
        """Bring records in line with what the engines really hold (after a restart, or any time)."""
        report = {"terminated": [], "stopped": [], "running": [], "orphans_removed": []}
        for kind, driver in self.drivers.items():
            ok, why = driver.available()
            if not ok:
                log.warning("reconcile: %s engine unavailable (%s); leaving its instances as recorded", kind, why)
                continue
            live = driver.list_managed(self.config.instance_label)
            rows = [Instance.from_row(r) for r in self.store.query(
                "SELECT * FROM instances WHERE kind=? AND state!='terminated'", (kind,))]
            known = {r.id for r in rows}
            for inst in rows:
                with self._lock(inst.id):
                    inst = self._row(inst.id)
                    if inst is None or inst.state == "terminated":
                        continue
                    e = driver.inspect(inst.engine_id) if inst.engine_id else None
                    if e is None:
                        if inst.state == "pending" and not inst.engine_id and time.time() - inst.created_at < 600:
                            continue  # a create in flight in this process
                        if inst.engine_id:  # what the engine left (disk overlay, forwards, leases) goes too
                            driver.terminate(inst.engine_id)
                        self._save(inst.id, state="terminated", terminated_at=time.time(),
                                   state_reason=f"Server.EngineRemoved: the {kind} was removed outside pocketcloud")
                        report["terminated"].append(inst.id)
                    elif e.state != inst.state and e.state in ("stopped", "running"):
                        reason = ("Server.EngineStopped: stopped outside pocketcloud" if e.state == "stopped" else "")
                        self._apply_engine(inst, e, state_reason=reason)
                        report[e.state].append(inst.id)
            for inst_id, engine_id in live.items():
                if inst_id in known:
                    continue
                # Look again, one by one: only an engine object whose record is gone or
                # terminated is an orphan (a crash between launch and record, or a failed rollback).
                inst = self._row(inst_id) if inst_id else None
                if inst is None or inst.state == "terminated":
                    driver.terminate(engine_id)
                    report["orphans_removed"].append(inst_id or engine_id)
        return report

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
            entry = {"available": ok, "description": desc}
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
        if vm is not None and hasattr(vm, "hypervisor"):
            return vm.hypervisor()
        return {"mode": self.config.hypervisor, "in_use": None, "reason": "no VM engine configured yet"}
