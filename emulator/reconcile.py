"""Records kept in line with what the engines really hold: the reconcile pass (a part of
Cloud), the forwards re-opened after a restart, and the background loop that runs both.

A pass asks each engine once for everything it holds of this cloud (`list_managed`) and
looks again, one instance at a time, only where that listing disagrees with a record.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Callable, ContextManager

from .compute.driver import Driver, EngineInstance
from .config import Config
from .errors import CloudError
from .instances import Instance
from .journal import Journal
from .state import Store
from .vpc_metadata import key_lookup, lookup

if TYPE_CHECKING:
    from .services import Cloud
    from .vpc_network import VpcNetwork

log = logging.getLogger("pocketcloud")

# A launch recorded before the operations journal existed has no journal row: it is taken
# for dead only once this old.
LAUNCH_GRACE = 600
# The driver steps after which the engine object has been started (a launch that died later
# is adopted when the engine shows it pending or running).
STARTED_STEPS = ("start", "kernel", "network", "ssh-ready")


class Reconciling:
    """Cloud's reconcile pass; Cloud provides the attributes and record helpers below."""

    config: Config
    store: Store
    journal: Journal
    drivers: dict[str, Driver]
    _lock: Callable[[str], ContextManager]
    _row: Callable[[str], Instance | None]
    _save: Callable[..., None]
    _apply_engine: Callable[..., Instance]
    _apply_forwards: Callable[[Instance], None]
    reconcile_volumes: Callable[[], list[str]]
    restore_volume_mounts: Callable[[str, dict], list[str]]
    reconcile_amis: Callable[[], list[str]]
    reconcile_snapshots: Callable[[], list[str]]
    network: "VpcNetwork"

    def reconcile(self) -> dict:
        """Bring records in line with what the engines really hold (after a restart, or any time)."""
        report = {"terminated": [], "stopped": [], "running": [], "orphans_removed": [], "adopted": [],
                  "rolled_back": []}
        report["volume_mounts"] = []
        for kind, driver in self.drivers.items():
            ok, why = driver.available()
            if not ok:
                log.warning("reconcile: %s engine unavailable (%s); leaving its instances as recorded", kind, why)
                continue
            live = driver.list_managed(self.config.instance_label)
            # first: an instance that lost its volumes' host mounts (a host reboot) gets them back,
            # and is started if that is what kept it from running, before its state is compared
            restored = self.restore_volume_mounts(kind, live)
            if restored:
                report["volume_mounts"] += restored
                live = driver.list_managed(self.config.instance_label)
            rows = [Instance.from_row(r) for r in self.store.query(
                "SELECT * FROM instances WHERE kind=? AND state!='terminated'", (kind,))]
            for inst in rows:
                with self._lock(inst.id):
                    inst = self._row(inst.id)
                    if inst is not None and inst.state != "terminated":
                        self._reconcile_one(kind, driver, inst, live.get(inst.id), report)
            known = {r.id for r in rows}
            for inst_id, seen in live.items():
                if inst_id in known:
                    continue
                # Look again, one by one: only an engine object whose record is gone or
                # terminated is an orphan (a crash between launch and record, or a failed rollback).
                inst = self._row(inst_id) if inst_id else None
                if inst is None or inst.state == "terminated":
                    driver.terminate(seen.engine_id)
                    report["orphans_removed"].append(inst_id or seen.engine_id)
        report["volumes"] = self.reconcile_volumes()  # half-done volume operations of a dead server
        report["images"] = self.reconcile_amis() + self.reconcile_snapshots()  # and its pending images, snapshots
        self.network.changed()  # bridges and rules repaired from the records (a no-op when networking is off)
        return report

    def _reconcile_one(self, kind: str, driver: Driver, inst: Instance, seen: EngineInstance | None,
                       report: dict) -> None:
        op = self.journal.open_op(inst.id) if inst.state in ("pending", "stopping", "shutting-down") else None
        if op is not None and self.journal.is_live(op):
            return  # this server is performing it right now (a VM launch runs in a worker)
        legacy = op is None and inst.state == "pending" and not inst.engine_id
        if (op is not None and op["op"] == "launch") or (legacy and time.time() - inst.created_at >= LAUNCH_GRACE):
            self._settle_dead_launch(kind, driver, inst, seen, op["step"] if op is not None else "", report)
            return
        if inst.state == "shutting-down":  # a terminate whose server died: finish it
            if inst.engine_id:
                driver.terminate(inst.engine_id)
            driver.remove_leftovers(inst.id)
            self._save(inst.id, state="terminated", terminated_at=time.time(),
                       state_reason="Client.UserInitiatedShutdown: terminated by its owner")
            self.journal.finish_all(inst.id)
            report["terminated"].append(inst.id)
            return
        if op is not None:  # a start or stop whose server died: the engine's state is the truth
            self.journal.finish_all(inst.id)
            seen = None
        if seen is not None and seen.engine_id == inst.engine_id:
            if seen.state == inst.state or seen.state not in ("stopped", "running"):
                return  # the listing agrees, or shows a transition still under way
        # The listing disagrees, or was taken before this record last changed: look again.
        e = driver.inspect(inst.engine_id) if inst.engine_id else None
        if e is None:
            if inst.state == "pending" and not inst.engine_id and time.time() - inst.created_at < LAUNCH_GRACE:
                return
            if inst.engine_id:  # what the engine left (disk overlay, forwards, leases) goes too
                driver.terminate(inst.engine_id)
            self._save(inst.id, state="terminated", terminated_at=time.time(),
                       state_reason=f"Server.EngineRemoved: the {kind} was removed outside pocketcloud")
            report["terminated"].append(inst.id)
        elif e.state != inst.state and e.state in ("stopped", "running"):
            reason = "Server.EngineStopped: stopped outside pocketcloud" if e.state == "stopped" else ""
            self._apply_engine(inst, e, state_reason=reason)
            report[e.state].append(inst.id)

    def _settle_dead_launch(self, kind: str, driver: Driver, inst: Instance, seen: EngineInstance | None,
                            step: str, report: dict) -> None:
        """A launch whose server died: adopted when the engine runs its object (started, or
        seen running), rolled back otherwise, with every leftover removed through the driver."""
        started = seen is not None and (seen.state == "running"
                                        or (seen.state == "pending" and step in STARTED_STEPS))
        if started:
            e = driver.inspect(seen.engine_id) or seen
            inst = self._apply_engine(inst, e, state_reason="")
            try:
                self._apply_forwards(inst)
            except CloudError as err:
                log.warning("adopted %s, but its forwards could not be applied: %s", inst.id, err)
            report["adopted"].append(inst.id)
        else:
            if seen is not None:
                driver.terminate(seen.engine_id)
            driver.remove_leftovers(inst.id)
            self._save(inst.id, state="terminated", terminated_at=time.time(),
                       state_reason="Server.InternalError: the server stopped during this launch"
                                    f"{f' (after its {step} step)' if step else ''}; what it had made was removed")
            report["rolled_back"].append(inst.id)
        self.journal.finish_all(inst.id)

    def restore_forwards(self) -> None:
        """Forwards live in this process: after a restart, open them again. Each engine
        re-opens those it keeps a record of (a VM's are in its domain); a container's
        security-group forwards are only in our records, so they are applied from there."""
        for kind, driver in self.drivers.items():
            if not driver.available()[0]:
                continue
            try:
                driver.restore_forwards()
            except CloudError as e:
                log.warning("could not restore the forwards of the %s engine: %s", kind, e)
        for inst in [Instance.from_row(r) for r in self.store.query(
                "SELECT * FROM instances WHERE kind='container' AND state!='terminated'")]:
            if any(p.get("from_group") for p in inst.ports):
                try:
                    self._apply_forwards(inst)
                except CloudError as e:
                    log.warning("could not restore the forwards of %s: %s", inst.id, e)


def settle_storage(cloud: "Cloud") -> None:
    """Bucket creates/deletes and multipart completions a dead server left half done."""
    try:
        cloud.storage.settle_journal()
    except CloudError as e:  # the engine is not serving yet: the next pass tries again
        log.warning("storage journal not settled yet: %s", e)
    except Exception:
        log.exception("settling the storage journal failed")


def start_background(cloud: "Cloud", interval: float = 5.0) -> threading.Thread:
    """Start the storage engine, re-open forwards and reconcile once before serving (a
    restarted server must not answer with stale states), then keep records in line with
    the engines in a daemon thread."""
    try:
        cloud.storage.start()  # prints which engine serves S3, and why
    except CloudError:
        log.exception("the S3 storage engine did not start; S3 requests will answer ServiceUnavailable")
    settle_storage(cloud)
    cloud.storage.start_lifecycle()  # S3 lifecycle rules honoured in the background
    cloud.network.start_metadata(lookup(cloud.store, cloud.config.region, key_lookup(cloud.keypairs)))
    try:
        cloud.restore_forwards()
    except Exception:
        log.exception("restoring port forwards failed")
    try:
        log.info("object index at start: %s", cloud.storage.reconcile_index())
    except Exception:
        log.exception("checking the object index at start failed")
    try:
        log.info("reconcile at start: %s", cloud.reconcile())
    except Exception:
        log.exception("reconcile at start failed; serving recorded states")

    def loop() -> None:
        for driver in cloud.drivers.values():
            try:  # settle auto mode (a KVM probe can take a while) before the first VM is asked for
                hv = driver.hypervisor()
                if hv:
                    log.info("hypervisor: %s", hv)
            except Exception:
                log.exception("choosing the hypervisor failed")
        tick = threading.Event()
        while True:
            tick.wait(interval)
            try:
                changed = {k: v for k, v in cloud.reconcile().items() if v}
                if changed:
                    log.info("reconcile: %s", changed)
            except Exception:  # the loop must survive an engine hiccup
                log.exception("reconcile failed")
            settle_storage(cloud)

    t = threading.Thread(target=loop, name="reconciler", daemon=True)
    t.start()
    cloud.billing.start()  # billing hook: the metering loop, beside the reconciler
    return t
