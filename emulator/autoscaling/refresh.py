"""Instance refresh: replace every member with one launched from a new template version,
batch by batch, never below the minimum healthy percentage.

With `MaxHealthyPercentage` 100 a batch is terminated first and the healer launches its
replacements (batch = members above the healthy minimum, at least one); above 100 new
members are launched first, and old ones terminated once the new are in service and warm.
A batch starts only when the previous one is in service and past its warm-up.
"""
from __future__ import annotations

import json
import math
import time
import uuid
from typing import TYPE_CHECKING

from ..errors import InvalidState, NotFound
from . import config as cfg
from .activities import at, join
from .model import IN_SERVICE, TERMINATING, Group, Member, Refresh

if TYPE_CHECKING:
    from ..accounts import Account
    from .service import AutoScaling

MAX_FAILURES = 3  # launch failures in a row that fail the refresh


def preferences(value) -> dict:
    p = value or {}
    if not isinstance(p, dict):
        raise cfg.invalid("Preferences must be a structure")
    for key in ("CheckpointPercentages", "CheckpointDelay", "AlarmSpecification"):
        if p.get(key) not in (None, "", []):
            raise cfg.invalid(f"Preferences.{key} is not supported in pocketcloud")
    if cfg.boolean(p.get("AutoRollback", False), "AutoRollback"):
        raise cfg.invalid("Preferences.AutoRollback is not supported in pocketcloud")
    if p.get("BakeTime") not in (None, "") and cfg.integer(p["BakeTime"], "BakeTime", 0, 172800):
        raise cfg.invalid("Preferences.BakeTime is not supported in pocketcloud (only 0)")
    out = {"MinHealthyPercentage": cfg.integer(p.get("MinHealthyPercentage", 90), "MinHealthyPercentage", 0, 100),
           "MaxHealthyPercentage": cfg.integer(p.get("MaxHealthyPercentage", 100), "MaxHealthyPercentage", 100, 200),
           "SkipMatching": cfg.boolean(p.get("SkipMatching", False), "SkipMatching"),
           "ScaleInProtectedInstances": p.get("ScaleInProtectedInstances") or "Ignore",
           "StandbyInstances": p.get("StandbyInstances") or "Ignore"}
    if p.get("InstanceWarmup") not in (None, ""):
        out["InstanceWarmup"] = cfg.integer(p["InstanceWarmup"], "InstanceWarmup", 0, 86400)
    if out["MaxHealthyPercentage"] - out["MinHealthyPercentage"] > 100:
        raise cfg.invalid("MaxHealthyPercentage may be at most 100 above MinHealthyPercentage")
    if out["MinHealthyPercentage"] == 100 and out["MaxHealthyPercentage"] == 100:
        raise cfg.invalid("MinHealthyPercentage 100 needs a MaxHealthyPercentage above 100 (launch before terminate)")
    if out["ScaleInProtectedInstances"] not in ("Refresh", "Ignore", "Wait"):
        raise cfg.invalid("ScaleInProtectedInstances must be Refresh, Ignore or Wait")
    if out["StandbyInstances"] not in ("Terminate", "Ignore", "Wait"):
        raise cfg.invalid("StandbyInstances must be Terminate, Ignore or Wait")
    return out


class Refreshes:
    def __init__(self, svc: "AutoScaling"):
        self.svc = svc

    def _rows(self, owner: str, group: str, ids: list[str] | None = None) -> list[Refresh]:
        sql, params = "SELECT * FROM autoscaling_refreshes WHERE owner=? AND group_name=?", [owner, group]
        if ids:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            params += ids
        return [Refresh.from_row(r) for r in self.svc.store.query(sql + " ORDER BY start_time DESC", tuple(params))]

    def active(self, group: Group) -> Refresh | None:
        return next((r for r in self._rows(*group.key) if r.active), None)

    def _save(self, r: Refresh, **fields) -> None:
        for k in ("config", "progress"):
            if k in fields:
                fields[k] = json.dumps(fields[k])
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.svc.store.tx() as c:
            c.execute(f"UPDATE autoscaling_refreshes SET {sets} WHERE id=?", (*fields.values(), r.id))

    # -- the API ---------------------------------------------------------------------------------
    def start(self, caller: "Account", group_name: str, strategy=None, desired: dict | None = None,
              prefs: dict | None = None) -> str:
        if (strategy or "Rolling") != "Rolling":
            raise cfg.invalid(f"Strategy {str(strategy)[:40]!r} is not supported (pocketcloud: Rolling)")
        prefs = preferences(prefs)
        with self.svc.request():
            group = self.svc.live(caller.id, group_name)
            if self.active(group):
                raise InvalidState("An Instance Refresh is already in progress and blocks the execution of this "
                                   "Instance Refresh.", code="InstanceRefreshInProgress")
            spec = None
            if desired:
                if not isinstance(desired, dict) or set(desired) - {"LaunchTemplate"}:
                    raise cfg.invalid("DesiredConfiguration takes a LaunchTemplate (mixed instances are not supported)")
                spec = cfg.launch_template(desired.get("LaunchTemplate"), caller.id, self.svc.templates)
            target = spec or group.config["LaunchTemplate"]
            version = cfg.launch_template_version(target, caller.id, self.svc.templates)
            members = [m for m in self.svc.members(group) if m.lifecycle in ("Pending", IN_SERVICE)]
            if prefs["SkipMatching"]:
                members = [m for m in members if not m.matches(version.template.id, version.version)]
            if prefs["ScaleInProtectedInstances"] == "Ignore":
                members = [m for m in members if not m.protected]
            rid = str(uuid.uuid4())
            config = {"Strategy": "Rolling", "Preferences": prefs, "DesiredConfiguration": desired and {
                "LaunchTemplate": spec}, "target": {"LaunchTemplateId": version.template.id,
                                                    "Version": str(version.version)}}
            progress = {"pending": [m.instance_id for m in members], "total": len(members), "replaced": 0,
                        "extra": 0, "phase": "", "failures": 0}
            with self.svc.store.tx() as c:
                c.execute("INSERT INTO autoscaling_refreshes (id, owner, group_name, status, config, progress, "
                          "start_time) VALUES (?,?,?,?,?,?,?)", (rid, caller.id, group.name, "Pending",
                                                                json.dumps(config), json.dumps(progress), time.time()))
        self.svc.healer.wake()
        return rid

    def describe(self, caller: "Account", group_name: str, ids: list[str] | None = None) -> list[Refresh]:
        group = self.svc.group(caller.id, group_name)
        return self._rows(*group.key, ids)

    def cancel(self, caller: "Account", group_name: str) -> str:
        with self.svc.request():
            group = self.svc.group(caller.id, group_name)
            r = self.active(group)
            if r is None:
                raise NotFound("No in progress or pending Instance Refresh found for Auto Scaling group "
                               f"{group_name}", code="ActiveInstanceRefreshNotFound")
            self._end(r, "Cancelled", "Instance Refresh was cancelled by a user request.")
        self.svc.healer.wake()
        return r.id

    def cancel_all(self, group: Group, reason: str) -> None:
        for r in self._rows(*group.key):
            if r.active:
                self._end(r, "Cancelled", reason)

    def _end(self, r: Refresh, status: str, reason: str) -> None:
        self._save(r, status=status, status_reason=reason, end_time=time.time(),
                   progress={**r.progress, "extra": 0})

    # -- what the healer asks --------------------------------------------------------------------
    def extra(self, group: Group) -> int:
        """Members launched above the desired capacity (launch-before-terminate batches)."""
        r = self.active(group)
        return r.progress.get("extra", 0) if r and r.status == "InProgress" else 0

    def launch_template(self, group: Group) -> dict | None:
        r = self.active(group)
        return r.config["target"] if r and r.status == "InProgress" else None

    def launch_failed(self, group: Group, message: str) -> None:
        r = self.active(group)
        if r is None:
            return
        failures = r.progress.get("failures", 0) + 1
        if failures >= MAX_FAILURES:
            self._end(r, "Failed", f"{failures} launches in a row failed: {message}")
        else:
            self._save(r, progress={**r.progress, "failures": failures})

    def step(self, group: Group, members: list[Member]) -> None:
        """One step of the active refresh (under the service lock, from the healer's tick)."""
        r = self.active(group)
        if r is None or group.suspended("InstanceRefresh") or r.status == "Cancelling":
            return
        if r.status == "Pending":
            self._save(r, status="InProgress", status_reason="Waiting for instances to warm up before continuing.")
            r.status = "InProgress"
        prefs, now = r.config["Preferences"], time.time()
        present = {m.instance_id for m in members if m.lifecycle != TERMINATING}
        pending = [i for i in r.progress["pending"] if i in present]
        progress = {**r.progress, "pending": pending, "replaced": r.progress["total"] - len(pending)}
        warmup = prefs.get("InstanceWarmup", group.warmup() or group.config["HealthCheckGracePeriod"])
        counted = [m for m in members if m.counts]
        # Members in service before the refresh began count as warm; replacements must warm up.
        ready = [m for m in counted if m.lifecycle == IN_SERVICE and m.in_service_at is not None
                 and (m.in_service_at <= r.start_time or now - m.in_service_at >= warmup)]
        busy = (self.svc.launches_in_flight(group) or any(m.lifecycle == TERMINATING for m in members)
                or len(ready) < len(counted) or len(counted) < group.desired + progress["extra"])
        if busy:
            if progress != r.progress:
                self._save(r, progress=progress)
            return
        old = [m for m in counted if m.instance_id in pending]
        if not old and not progress["extra"]:
            if r.config.get("DesiredConfiguration"):
                current = self.svc.group(*group.key)
                self.svc.save(current, config={**current.config, **r.config["DesiredConfiguration"]})
            self._save(r, status="Successful", status_reason="", end_time=now, progress={**progress, "extra": 0})
            return
        desired = group.desired
        room = math.floor(desired * prefs["MaxHealthyPercentage"] / 100) - desired
        if room > 0:
            if progress["extra"]:  # the new batch is in service and warm: its old counterparts go
                victims = self.svc.healer.choose_victims(group, old, progress["extra"])
                progress.update(extra=0, phase="terminate")
            else:
                progress.update(extra=min(room, len(old)), phase="launch")
                self._save(r, progress=progress, status_reason="Launching replacements before terminating.")
                return
        else:
            healthy_floor = math.ceil(desired * prefs["MinHealthyPercentage"] / 100)
            batch = min(len(old), max(1, len(ready) - healthy_floor))
            victims = self.svc.healer.choose_victims(group, old, batch)
            progress["phase"] = "terminate"
        self._save(r, progress=progress, status_reason="Waiting for instances to warm up before continuing.")
        for m in victims:
            self.svc.healer.begin_termination(group, m, join(
                at(now, "an instance was taken out of service in response to an instance refresh"),
                at(now, f"instance {m.instance_id} was selected for termination")))
