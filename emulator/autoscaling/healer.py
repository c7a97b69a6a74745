"""The loop that keeps every group at its desired capacity, in a thread of its own.

Each tick (a second; at once when dockerd reports a container dying or a request wakes it)
it looks at every member's record *and* its engine object, so a container killed with
`docker kill` is noticed in about 0.1 s and a domain destroyed with `virsh destroy` within
the second, not at the next reconcile. Unhealthy members are
terminated and replaced, surplus ones terminated, missing ones launched in the emptiest zone.

Launches and terminations run in worker threads. Each launch first writes a journal row
(`autoscaling_launches`) and marks the instance it creates with the journal id, so a process
that dies mid-launch leaves a trail: the next one adopts the instance if it is running, or
removes it, and records the outcome. A group whose launches keep failing waits longer after
each failure (10 s doubling up to 5 min), recording every failure as an activity.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from ..errors import CloudError, NotFound
from ..launch_templates import launch_args
from ..validation import NAME
from .activities import at, join
from .model import HEALTHY, IN_SERVICE, PENDING, TERMINATING, UNHEALTHY, Group, Member

if TYPE_CHECKING:
    from .service import AutoScaling

log = logging.getLogger("pocketcloud.autoscaling")

TICK = 1.0
BACKOFF_FIRST, BACKOFF_MAX = 10.0, 300.0
CAUSE_MEMORY = 60.0  # a user request stays quoted in the activities of the next minute
SWEEP_EVERY = 30  # ticks between looks for strays (instances marked for a group but in none)
LAUNCH_WORKERS, TERMINATE_WORKERS = 3, 3

HEALTH_PHRASES = {
    "terminated": "an EC2 health check indicating it has been terminated or stopped",
    "stopped": "an EC2 health check indicating it has been terminated or stopped",
    "user health-check": "a user health-check",
}


def backoff(failures: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, failures - 1))


class Healer:
    def __init__(self, svc: "AutoScaling"):
        self.svc = svc
        self.cloud = svc.cloud
        self.incarnation = uuid.uuid4().hex
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._launches = ThreadPoolExecutor(LAUNCH_WORKERS, thread_name_prefix="asg-launch")
        self._terminations = ThreadPoolExecutor(TERMINATE_WORKERS, thread_name_prefix="asg-terminate")
        self._terminating: set[str] = set()
        self._jobs: set[Future] = set()
        self._thread: threading.Thread | None = None
        self._ticks = 0

    # -- the loop ------------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        self._thread = threading.Thread(target=self._run, name="autoscaling", daemon=True)
        self._thread.start()
        threading.Thread(target=self._watch_containers, name="autoscaling-docker-events", daemon=True).start()
        return self._thread

    def _watch_containers(self) -> None:
        """Wake the loop the moment dockerd reports a container dying, instead of at the next
        tick: a killed container is noticed in tens of milliseconds. (VMs wait for the tick.)"""
        while not self._stop.is_set():
            try:
                import docker

                client = docker.DockerClient(base_url=self.cloud.config.docker_url, timeout=None)
                for _ in client.events(decode=True, filters={"type": "container", "event": ["die", "destroy"]}):
                    self.wake()
                    if self._stop.is_set():
                        return
            except Exception as e:  # noqa: BLE001 - dockerd restarting or away: the tick still heals
                log.debug("docker events stream ended (%s); reconnecting", e)
            self._stop.wait(5)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _submit(self, pool: ThreadPoolExecutor, fn, *args) -> None:
        job = pool.submit(fn, *args)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def settle(self, timeout: float = 60.0) -> bool:
        """Wait for the launches and terminations under way (tests, labs); True when none is left."""
        deadline = time.monotonic() + timeout
        while self._jobs and time.monotonic() < deadline:
            wait(list(self._jobs), timeout=max(0.0, deadline - time.monotonic()))
        return not self._jobs

    def _run(self) -> None:
        try:
            self.recover()
        except Exception:  # noqa: BLE001 - the loop must start even if recovery hit an engine hiccup
            log.exception("autoscaling: recovery after restart failed; will sweep again")
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - one bad tick must not end healing
                log.exception("autoscaling tick failed")
            self._wake.wait(TICK)
            self._wake.clear()

    def tick(self) -> None:
        self._ticks += 1
        for group in self.svc.groups(None):
            try:
                self.tick_group(group)
            except NotFound:
                continue  # deleted since the list was read
            except Exception:  # noqa: BLE001 - one group's trouble must not starve the others
                log.exception("autoscaling: group %s of %s", group.name, group.owner)
        if self._ticks % SWEEP_EVERY == 0:
            self.sweep()

    def tick_group(self, group: Group) -> None:
        with self.svc.lock:
            group = self.svc.group(*group.key)
            account = self.cloud.accounts.get(group.owner)
            members = self.svc.members(group)
            records = {i.id: i for i in self.cloud.describe_instances(
                account, ids=[m.instance_id for m in members])} if members else {}
            now = time.time()
            for m in members:
                if m.lifecycle == PENDING and getattr(records.get(m.instance_id), "state", None) == "running":
                    self._set(m, lifecycle=IN_SERVICE, in_service_at=now)
                    m.lifecycle = IN_SERVICE
                if m.lifecycle in (PENDING, IN_SERVICE) and m.health == HEALTHY and not group.suspended("HealthCheck"):
                    reason = self.unhealthy(records.get(m.instance_id))
                    if reason:
                        self._set(m, health=UNHEALTHY, health_reason=reason)
                        m.health, m.health_reason = UNHEALTHY, reason
                if m.lifecycle != TERMINATING and m.health == UNHEALTHY and not group.suspended("ReplaceUnhealthy"):
                    phrase = HEALTH_PHRASES.get(m.health_reason, "an EC2 instance status check failure")
                    self.begin_termination(group, m, at(now, f"an instance was taken out of service in response "
                                                             f"to {phrase}"))
                elif m.lifecycle == TERMINATING and m.instance_id not in self._terminating:
                    self._submit_termination(group, m)  # a job a previous process did not finish
            self.svc.refreshes.step(group, self.svc.members(group))
            self._capacity(self.svc.group(*group.key), self.svc.members(group))

    def unhealthy(self, inst) -> str | None:
        """Why a member is unhealthy by EC2's measure, looking at the engine itself: a record says
        `running` until reconcile catches up, the engine knows at once."""
        if inst is None or inst.state == "terminated":
            return "terminated"
        if inst.state in ("stopped", "stopping", "shutting-down"):
            return "stopped"
        if inst.state == "running" and inst.engine_id:
            try:
                seen = self.cloud.driver(inst.kind).inspect(inst.engine_id)
            except CloudError:
                return None  # an engine that does not answer is no verdict on the instance
            if seen is None:
                return "terminated"
            if seen.state in ("stopped", "stopping", "shutting-down", "terminated"):
                return "stopped"
        return None

    # -- capacity --------------------------------------------------------------------------------
    def _capacity(self, group: Group, members: list[Member]) -> None:
        counted = [m for m in members if m.counts]
        in_flight = self.svc.launches_in_flight(group)
        target = group.desired + self.svc.refreshes.extra(group)
        have = len(counted) + in_flight
        now = time.time()
        if group.deleting and not members and not in_flight:
            with self.svc.store.tx() as c:
                c.execute("DELETE FROM autoscaling_groups WHERE owner=? AND name=?", group.key)
            return
        if have == target and group.runtime.get("cause"):
            # The request that moved the capacity has been carried out: later activities have causes of their own.
            self.svc.save(group, runtime={k: v for k, v in group.runtime.items() if k not in ("cause", "cause_at")})
        if have < target and not group.suspended("Launch") and now >= group.runtime.get("next_launch_at", 0):
            for _ in range(target - have):
                self.begin_launch(group, members, have, target)
        elif have > target and not group.suspended("Terminate"):
            victims = self.choose_victims(group, counted, min(len(counted), have - target))
            for n, m in enumerate(victims):
                self.begin_termination(group, m, join(
                    self._recent_cause(group),
                    at(now, f"an instance was taken out of service in response to a difference between desired and "
                            f"actual capacity, shrinking the capacity from {have} to {target}"),
                    at(now, f"instance {m.instance_id} was selected for termination")))

    def _recent_cause(self, group: Group) -> str:
        return group.runtime.get("cause", "") if time.time() - group.runtime.get("cause_at", 0) < CAUSE_MEMORY else ""

    def choose_victims(self, group: Group, counted: list[Member], n: int) -> list[Member]:
        """AWS's order: the zone with the most members first, then (Default, OldestLaunchTemplate)
        members not on the current template version, then the oldest (or newest) instance."""
        policies = group.config.get("TerminationPolicies") or ["Default"]
        lt = group.config["LaunchTemplate"]
        try:
            current = self.svc.templates.resolve(group.owner, lt["LaunchTemplateId"], None, lt["Version"]).version
        except CloudError:
            current = None  # the template is gone: no member is "on an older version" than nothing
        pool = [m for m in counted if not m.protected]
        chosen: list[Member] = []
        while pool and len(chosen) < n:
            per_az: dict[str, int] = {}
            for m in pool:
                per_az[m.az] = per_az.get(m.az, 0) + 1
            newest = "NewestInstance" in policies

            def key(m: Member):
                stale = current is not None and not m.matches(lt["LaunchTemplateId"], current)
                return (-per_az[m.az], not stale, -m.launched_at if newest else m.launched_at)

            pick = min(pool, key=key)
            chosen.append(pick)
            pool.remove(pick)
        return chosen

    def _zone(self, group: Group, members: list[Member]) -> str:
        """The zone with the fewest members and launches under way (balanced across zones)."""
        count = {az: 0 for az in group.config["AvailabilityZones"]}
        for m in members:
            if m.counts and m.az in count:
                count[m.az] += 1
        for row in self.svc.store.query("SELECT az FROM autoscaling_launches WHERE owner=? AND group_name=?",
                                        group.key):
            if row["az"] in count:
                count[row["az"]] += 1
        return min(count, key=lambda az: (count[az], group.config["AvailabilityZones"].index(az)))

    # -- launching -------------------------------------------------------------------------------
    def begin_launch(self, group: Group, members: list[Member], before: int, target: int) -> None:
        az = self._zone(group, members)
        spec = self.svc.refreshes.launch_template(group) or group.config["LaunchTemplate"]
        cause = join(self._recent_cause(group),
                     at(time.time(), f"an instance was started in response to a difference between desired and "
                                     f"actual capacity, increasing the capacity from {before} to {target}"))
        activity = self.svc.activities.start(group.owner, group.name, "Launching a new EC2 instance", cause,
                                             details={"Subnet ID": group.config.get("Subnets", {}) and
                                                      next((s for s, z in group.config["Subnets"].items() if z == az),
                                                           None), "Availability Zone": az})
        launch_id = uuid.uuid4().hex
        with self.svc.store.tx() as c:
            c.execute("INSERT INTO autoscaling_launches (id, owner, group_name, az, activity_id, incarnation, "
                      "started_at) VALUES (?,?,?,?,?,?,?)",
                      (launch_id, group.owner, group.name, az, activity, self.incarnation, time.time()))
        self._submit(self._launches, self._launch, group, launch_id, az, activity, dict(spec))

    def _launch(self, group: Group, launch_id: str, az: str, activity: str, spec: dict) -> None:
        try:
            account = self.cloud.accounts.get(group.owner)
            version = self.svc.templates.resolve(group.owner, spec["LaunchTemplateId"], None, spec.get("Version"))
            own = {a.id: a.kind for a in self.cloud.describe_machine_images(account) if a.state == "available"}
            args = launch_args(version, self.cloud.list_images(), own)  # a template may name an image of the owner's
            tags = {**(args.pop("tags") or {}), **group.propagated_tags()}
            name = tags.get("Name") if NAME.fullmatch(tags.get("Name", "")) else None
            template = {"LaunchTemplateId": version.template.id, "LaunchTemplateName": version.template.name,
                        "Version": str(version.version), "InstanceType": args["type"],
                        "ImageId": version.data.get("ImageId")}
            subnet = next((s for s, z in group.config.get("Subnets", {}).items() if z == az), None)
            where = {"subnet_id": self.svc.placement.subnet(group.owner, az, subnet)} \
                if self.svc.placement is not None else {}
            inst = self.cloud.run_instance(account, tags=tags or None, name=name, extra={
                "availability_zone": az, **where,
                "autoscaling": {"group": group.name, "launch": launch_id, "template": template}}, **args)
            if self.svc.placement is not None:
                try:
                    self.svc.placement.place(group.owner, inst.id, az, subnet)
                except CloudError:
                    self._remove(account, inst.id)  # a member outside its subnet is no member
                    raise
        except Exception as e:  # noqa: BLE001 - any failure is the launch's, recorded as AWS records it
            message = e.message if isinstance(e, CloudError) else "internal error; see the server log"
            if not isinstance(e, CloudError):
                log.exception("autoscaling launch for %s failed", group.name)
            self._launch_failed(group, launch_id, activity, message)
            return
        with self.svc.lock:
            state = IN_SERVICE if inst.state == "running" else PENDING
            now = time.time()
            with self.svc.store.tx() as c:
                c.execute("INSERT INTO autoscaling_members (instance_id, owner, group_name, az, lifecycle, template, "
                          "protected, activity_id, launched_at, in_service_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                          (inst.id, group.owner, group.name, az, state, json.dumps(template),
                           int(bool(group.config.get("NewInstancesProtectedFromScaleIn"))), activity, now,
                           now if state == IN_SERVICE else None))
                c.execute("DELETE FROM autoscaling_launches WHERE id=?", (launch_id,))
            current = self.svc.group(*group.key)
            self.svc.save(current, runtime={**current.runtime, "failures": 0, "next_launch_at": 0})
        self.svc.activities.finish(activity, "Successful", description=f"Launching a new EC2 instance: {inst.id}")
        self.wake()

    def _launch_failed(self, group: Group, launch_id: str, activity: str, message: str) -> None:
        with self.svc.lock:
            with self.svc.store.tx() as c:
                c.execute("DELETE FROM autoscaling_launches WHERE id=?", (launch_id,))
            try:
                current = self.svc.group(*group.key)
            except CloudError:
                current = None
            if current is not None:
                failures = current.runtime.get("failures", 0) + 1
                wait = backoff(failures)
                self.svc.save(current, runtime={**current.runtime, "failures": failures,
                                                "next_launch_at": time.time() + wait})
                self.svc.refreshes.launch_failed(current, message)
                log.warning("autoscaling: launch for %s failed (%d in a row, next try in %.0fs): %s",
                            group.name, failures, wait, message)
        self.svc.activities.finish(activity, "Failed", message, description=(
            f"Launching a new EC2 instance.  Status Reason: {message.rstrip('.')}. Launching EC2 instance failed."))

    # -- terminating -----------------------------------------------------------------------------
    def begin_termination(self, group: Group, m: Member, cause: str) -> str:
        activity = self.svc.activities.start(group.owner, group.name, f"Terminating EC2 instance: {m.instance_id}",
                                             cause)
        self._set(m, lifecycle=TERMINATING, activity_id=activity)
        m.lifecycle, m.activity_id = TERMINATING, activity
        self._submit_termination(group, m)
        return activity

    def _submit_termination(self, group: Group, m: Member) -> None:
        self._terminating.add(m.instance_id)
        self._submit(self._terminations, self._terminate, group, m)

    def _terminate(self, group: Group, m: Member) -> None:
        try:
            self.cloud.terminate_instance(self.cloud.accounts.get(group.owner), m.instance_id)
        except NotFound:
            pass  # its record is gone already: nothing left to stop
        except Exception as e:  # noqa: BLE001 - retried on a later tick
            log.warning("autoscaling: terminating %s failed, will retry: %s", m.instance_id, e)
            self._terminating.discard(m.instance_id)
            return
        with self.svc.store.tx() as c:
            c.execute("DELETE FROM autoscaling_members WHERE instance_id=?", (m.instance_id,))
        if m.activity_id:
            self.svc.activities.finish(m.activity_id, "Successful")
        self._terminating.discard(m.instance_id)
        self.wake()

    def _set(self, m: Member, **fields) -> None:
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.svc.store.tx() as c:
            c.execute(f"UPDATE autoscaling_members SET {sets} WHERE instance_id=?", (*fields.values(), m.instance_id))

    # -- after a restart ---------------------------------------------------------------------------
    def recover(self) -> dict:
        """Settle the launches a previous process left in the journal: a running instance is
        adopted as a member, a half-made one is removed; then sweep for strays."""
        report: dict[str, list] = {"adopted": [], "removed": []}
        rows = self.svc.store.query("SELECT * FROM autoscaling_launches WHERE incarnation!=?", (self.incarnation,))
        for row in rows:
            with self.svc.lock:
                self._settle(row, report)
        report["removed"] += self.sweep()
        if report["removed"]:
            # A half-launched instance may have an engine object its record never learnt of; now
            # that the record is terminated, reconcile removes it as an orphan (at once, not at
            # the reconcile loop's next pass, which can be a hypervisor probe away).
            self.cloud.reconcile()
        if any(report.values()):
            log.info("autoscaling recovery: %s", report)
        return report

    def _settle(self, row, report: dict) -> None:
        try:
            account = self.cloud.accounts.get(row["owner"])
            group = self.svc.group(row["owner"], row["group_name"])
        except CloudError:
            account, group = None, None
        found = [i for i in (self.cloud.describe_instances(account) if account else [])
                 if i.details.get("autoscaling", {}).get("launch") == row["id"] and i.state != "terminated"]
        adopt = found[0] if found and found[0].state == "running" and found[0].engine_id and group \
            and not group.deleting else None
        now = time.time()
        with self.svc.store.tx() as c:
            if adopt:
                c.execute("INSERT OR IGNORE INTO autoscaling_members (instance_id, owner, group_name, az, lifecycle, "
                          "template, activity_id, launched_at, in_service_at) VALUES (?,?,?,?,?,?,?,?,?)",
                          (adopt.id, row["owner"], row["group_name"], row["az"], IN_SERVICE,
                           json.dumps(adopt.details["autoscaling"].get("template", {})), row["activity_id"],
                           adopt.created_at, now))
            c.execute("DELETE FROM autoscaling_launches WHERE id=?", (row["id"],))
        if adopt:
            report["adopted"].append(adopt.id)
            self.svc.activities.finish(row["activity_id"], "Successful", "the server restarted during this launch; "
                                       "the instance was running and was adopted",
                                       description=f"Launching a new EC2 instance: {adopt.id}")
            return
        for inst in found:
            self._remove(account, inst.id)
            report["removed"].append(inst.id)
        reason = (f"the server restarted during this launch; the half-launched instance {found[0].id} was removed"
                  if found else "the server restarted before the instance was created")
        self.svc.activities.finish(row["activity_id"], "Failed", reason, description=(
            f"Launching a new EC2 instance.  Status Reason: {reason}. Launching EC2 instance failed."))

    def _remove(self, account, instance_id: str) -> None:
        try:
            self.cloud.terminate_instance(account, instance_id)
        except CloudError as e:
            log.warning("autoscaling: could not remove %s: %s", instance_id, e)

    def sweep(self) -> list[str]:
        """Terminate instances marked for a group that are neither members nor launches under
        way: what a crash between two steps could leave; never anything unmarked."""
        removed = []
        with self.svc.lock:  # a launch completes under this lock: no member is half-recorded here
            members = {r[0] for r in self.svc.store.query("SELECT instance_id FROM autoscaling_members")}
            launches = {r[0] for r in self.svc.store.query("SELECT id FROM autoscaling_launches")}
            for account in self.cloud.accounts.list():
                for inst in self.cloud.describe_instances(account):
                    mark = inst.details.get("autoscaling")
                    if not mark or inst.state == "terminated" or inst.id in members or mark.get("launch") in launches:
                        continue
                    self._remove(account, inst.id)
                    removed.append(inst.id)
        return removed
