"""The engine half of a launch (a part of Cloud): journalled step by step, synchronous for
a container (under a second), in a bounded worker pool for a VM (tens of seconds under
TCG), whose boot phases are recorded on the instance as they are seen.

A VM launch answers at once with the instance `pending` (as EC2 does); the worker takes it
to `running`, or to `terminated` with a `Server.InternalError` reason and nothing left on
the engine. The fault hook (POCKETCLOUD_FAULT=launch:after-STEP) kills the server at a step,
for the crash tests.
"""
from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import cached_property
from typing import Callable, ContextManager

from .compute.driver import Driver, EngineInstance, LaunchSpec
from .config import Config
from .errors import CloudError, InvalidState
from .faults import maybe_die
from .instances import Instance, iso
from .journal import Journal
from .state import Store

log = logging.getLogger("pocketcloud")

# Driver steps as boot phases (the names GET /instances/ID shows and the CLI renders).
PHASES = {"define": "defined", "start": "qemu-started", "kernel": "kernel", "network": "network",
          "ssh-ready": "ssh-ready"}
FAULT_STEPS = ("record", "volumes", "engine-create", "define", "start")


class Launching:
    """Cloud's launch worker; Cloud provides the attributes and record helpers below."""

    config: Config
    store: Store
    journal: Journal
    _lock: Callable[[str], ContextManager]
    _row: Callable[[str], Instance | None]
    _save: Callable[..., None]
    _apply_engine: Callable[..., Instance]
    _apply_forwards: Callable[[Instance], None]
    finish_launch_volumes: Callable[[str], None]

    @cached_property
    def _launch_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.config.launch_workers, thread_name_prefix="vm-launch")

    def fault(self, step: str, op: str = "launch") -> None:
        """Die here, as kill -9 would, when the fault hook names this step (crash tests only)."""
        maybe_die(self.config.fault, f"{op}:after-{step}")

    def _step_hook(self, inst_id: str, op_id: int, record_phases: bool) -> Callable[[str, str], None]:
        def on_step(step: str, engine_id: str) -> None:
            self.journal.step(op_id, step)
            if step in ("engine-create", "define"):  # before it starts: its address pinned, its DHCP reservation served
                self.network.changed()
            if record_phases and step in PHASES:
                self._record_phase(inst_id, PHASES[step], engine_id)
            self.fault(step)
            row = self._row(inst_id)
            if row is None or row.state == "terminated":
                raise InvalidState(f"instance {inst_id} was terminated while it launched")

        return on_step

    def _record_phase(self, inst_id: str, phase: str, engine_id: str) -> None:
        """Append a boot phase (and the engine id, once known, so a terminate meanwhile finds
        the domain) in one statement: the launch worker is not the record's only writer."""
        inst = self._row(inst_id)
        if inst is None:
            return
        now = time.time()
        entry = {"name": phase, "at": iso(now), "elapsed": round(now - inst.created_at, 1)}
        with self.store.tx() as c:
            c.execute("UPDATE instances SET details=json_set(details, '$.boot.phase', ?,"
                      " '$.boot.phases', json_insert(COALESCE(json_extract(details, '$.boot.phases'), json('[]')),"
                      " '$[#]', json(?))), engine_id=COALESCE(engine_id, NULLIF(?, '')), updated_at=? WHERE id=?",
                      (phase, json.dumps(entry), engine_id, now, inst_id))

    def _launch_on_engine(self, inst_id: str, driver: Driver, spec: LaunchSpec, group_ports: list[int]) -> Instance:
        """Create on the engine and take the record to what the engine says; on failure the
        driver removed what it made and the exception propagates."""
        engine: EngineInstance = driver.launch(spec)
        with self._lock(inst_id):
            inst = self._row(inst_id)
            if inst is None or inst.state == "terminated":  # terminated while it launched
                driver.terminate(engine.engine_id)
                return inst
            inst = self._apply_engine(inst, engine)
            launched = {(p.guest, p.host) for p in spec.ports}
            # A security-group rule changed while a VM launched: its record has forwards the
            # launch did not know of (the container path applies group forwards just below).
            resync = inst.kind == "vm" and {(p["guest"], p["host"]) for p in inst.ports} != launched
            if resync:
                self._apply_forwards(inst)
        if group_ports and inst.kind != "vm":
            self._apply_forwards(inst)
        if inst is not None and inst.state != "terminated":
            self.finish_launch_volumes(inst_id)  # attached (a VM's hot-plugged now its guest is up), in-use
        return inst

    def _launch_async(self, inst_id: str, op_id: int, driver: Driver, spec: LaunchSpec) -> None:
        future = self._launch_pool.submit(self._launch_worker, inst_id, op_id, driver, spec)
        self._launches[inst_id] = future
        future.add_done_callback(lambda _f: self._launches.pop(inst_id, None))

    @cached_property
    def _launches(self) -> dict[str, Future]:
        return {}

    def wait_for_launches(self, timeout: float | None = None) -> None:
        """Block until every launch in flight in this server has ended (tests, a clean exit)."""
        wait(list(self._launches.values()), timeout=timeout)

    def _launch_worker(self, inst_id: str, op_id: int, driver: Driver, spec: LaunchSpec) -> None:
        try:
            self._launch_on_engine(inst_id, driver, spec, [])
        except BaseException as e:  # noqa: BLE001 - a worker has no caller to raise to
            reason = f"({e.code}) {e.message}" if isinstance(e, CloudError) else f"{type(e).__name__}: {e}"
            if not isinstance(e, CloudError):
                log.exception("launch of %s failed", inst_id)
            with self._lock(inst_id):
                inst = self._row(inst_id)
                if inst is not None and inst.state != "terminated":
                    if inst.engine_id:  # a failure after the engine's launch (its forwards) left the object
                        driver.remove_leftovers(inst_id)
                    self._save(inst_id, state="terminated", terminated_at=time.time(),
                               state_reason=f"Server.InternalError: the launch failed: {reason}"[:2000])
            self.network.changed()  # its pinning and DHCP reservation go with it, as at a terminate
        finally:
            self.journal.finish(op_id)

    def launching_now(self, inst_id: str) -> bool:
        """Is this server (not a dead one) still performing the instance's launch?"""
        op = self.journal.open_op(inst_id, "launch")
        return op is not None and self.journal.is_live(op)
