"""Auto Scaling groups: the use cases every front end calls (Query API, REST, console, CLI).

Requests only change the stored intent (sizes, health marks, ...) and record the activity;
the healer (healer.py) turns intent into launches and terminations, so an API call never
waits for an engine and a restart picks up exactly where the last process stopped.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import AlreadyExists, InvalidParameter, InvalidState, NotFound
from ..launch_templates import LaunchTemplates
from . import config as cfg
from .activities import Activities, at
from .healer import Healer
from .model import DELETING, HEALTHY, TERMINATING, UNHEALTHY, Group, Member
from .policies import Policies
from .refresh import Refreshes

if TYPE_CHECKING:
    from ..accounts import Account
    from ..services import Cloud
    from .placement import VpcPlacement

MAX_GROUPS = 200  # per account (AWS allows 500 per region; this is a laptop)
REQUEST_WAIT = 10.0  # seconds a request waits for the group lock before ResourceContention


def not_found(name: str) -> NotFound:
    """Auto Scaling says ValidationError (400) for a missing group; REST says 404."""
    return NotFound(f"AutoScalingGroup name not found - AutoScalingGroup {name[:255]} not found",
                    code="ValidationError")


class AutoScaling:
    def __init__(self, cloud: "Cloud", placement: "VpcPlacement | None" = None):
        self.cloud = cloud
        self.store = cloud.store
        self.region = cloud.config.region
        self.placement = placement
        self.subnets = placement.subnets if placement is not None else None
        self.templates = LaunchTemplates(cloud.store)
        self.activities = Activities(cloud.store)
        # One lock for every decision that changes membership, taken briefly by requests and by
        # the healer's decision step; engine work happens outside it.
        self.lock = threading.RLock()
        self.healer = Healer(self)
        self.policies = Policies(self)
        self.refreshes = Refreshes(self)

    @contextmanager
    def request(self):
        """The lock, for a request: one that waits too long answers as AWS does when another
        update of the group is under way, instead of hanging the caller."""
        if not self.lock.acquire(timeout=REQUEST_WAIT):
            raise InvalidState("You already have a pending update to an Auto Scaling resource (for example, a "
                               "group, instance, or load balancer).", code="ResourceContention")
        try:
            yield
        finally:
            self.lock.release()

    def start(self) -> threading.Thread:
        """Recover what a previous process left half-done, then heal in a thread of its own
        (and sample CPU for target tracking in another)."""
        self.policies.start()
        return self.healer.start()

    def stop(self) -> None:
        self.healer.stop()
        self.policies.stop()

    # -- reading -----------------------------------------------------------------------------
    def group(self, owner: str, name) -> Group:
        row = self.store.one("SELECT * FROM autoscaling_groups WHERE owner=? AND name=?", (owner, name))
        if row is None:  # another account's group answers exactly like a missing one
            raise not_found(str(name))
        return Group.from_row(row)

    def groups(self, owner: str | None, names: list[str] | None = None) -> list[Group]:
        sql, params = "SELECT * FROM autoscaling_groups WHERE 1=1", []
        if owner is not None:
            sql += " AND owner=?"
            params.append(owner)
        if names:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            params += names
        return [Group.from_row(r) for r in self.store.query(sql + " ORDER BY created_at", tuple(params))]

    def members(self, group: Group) -> list[Member]:
        rows = self.store.query("SELECT * FROM autoscaling_members WHERE owner=? AND group_name=? "
                                "ORDER BY launched_at", group.key)
        return [Member.from_row(r) for r in rows]

    def member(self, owner: str, instance_id: str) -> Member:
        row = self.store.one("SELECT * FROM autoscaling_members WHERE owner=? AND instance_id=?",
                             (owner, instance_id))
        if row is None:
            raise NotFound(f"Instance Id not found - No managed instance found for instance ID: "
                           f"{str(instance_id)[:40]}", code="ValidationError")
        return Member.from_row(row)

    def instances(self, owner: str, ids: list[str] | None = None) -> list[Member]:
        sql, params = "SELECT * FROM autoscaling_members WHERE owner=?", [owner]
        if ids:
            sql += f" AND instance_id IN ({','.join('?' * len(ids))})"
            params += ids
        return [Member.from_row(r) for r in self.store.query(sql + " ORDER BY launched_at", tuple(params))]

    def launches_in_flight(self, group: Group) -> int:
        return self.store.one("SELECT COUNT(*) FROM autoscaling_launches WHERE owner=? AND group_name=?",
                              group.key)[0]

    # -- writing -----------------------------------------------------------------------------
    def save(self, group: Group, **fields) -> None:
        for k in ("config", "runtime"):
            if k in fields:
                fields[k] = json.dumps(fields[k])
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.store.tx() as c:
            c.execute(f"UPDATE autoscaling_groups SET {sets} WHERE owner=? AND name=?", (*fields.values(), *group.key))

    def _desired_changed(self, group: Group, config: dict, cause: str) -> None:
        """Store a new desired capacity with the sentence that explains it (the activities that
        follow quote it, as AWS's do)."""
        now = time.time()
        self.save(group, config=config, runtime={**group.runtime, "cause": cause, "cause_at": now, "scaled_at": now})
        self.healer.wake()

    def create_group(self, caller: "Account", spec: dict) -> Group:
        name = cfg.group_name(spec.get("AutoScalingGroupName"))
        config = cfg.create(spec, caller.id, self.region, self.templates, self.subnets)
        now = time.time()
        with self.request(), self.store.tx() as c:
            if c.execute("SELECT 1 FROM autoscaling_groups WHERE owner=? AND name=?", (caller.id, name)).fetchone():
                raise AlreadyExists(f"AutoScalingGroup by this name already exists - A group with the name {name} "
                                    "already exists", code="AlreadyExists")
            count = c.execute("SELECT COUNT(*) FROM autoscaling_groups WHERE owner=?", (caller.id,)).fetchone()[0]
            if count >= MAX_GROUPS:
                raise InvalidParameter(f"You have reached the limit of {MAX_GROUPS} Auto Scaling groups",
                                       code="LimitExceeded")
            cause = at(now, f"a user request created an AutoScalingGroup changing the desired capacity from 0 to "
                            f"{config['DesiredCapacity']}")
            c.execute("INSERT INTO autoscaling_groups (owner, name, uuid, config, runtime, created_at) "
                      "VALUES (?,?,?,?,?,?)", (caller.id, name, str(uuid.uuid4()), json.dumps(config),
                                               json.dumps({"cause": cause, "cause_at": now}), now))
        self.healer.wake()
        return self.group(caller.id, name)

    def update_group(self, caller: "Account", name: str, spec: dict) -> Group:
        with self.request():
            group = self.live(caller.id, name)
            config = cfg.update(spec, group.config, caller.id, self.region, self.templates, self.subnets)
            old, new = group.desired, config["DesiredCapacity"]
            cause = at(time.time(), f"a user request update of AutoScalingGroup constraints to min: "
                                    f"{config['MinSize']}, max: {config['MaxSize']}, desired: {new} changing the "
                                    f"desired capacity from {old} to {new}")
            if old != new:
                self._desired_changed(group, config, cause)
            else:
                self.save(group, config=config)
                self.healer.wake()
        return self.group(caller.id, name)

    def set_desired(self, caller: "Account", name: str, desired, honor_cooldown: bool = False) -> Group:
        with self.request():
            group = self.live(caller.id, name)
            desired = cfg.integer(desired, "DesiredCapacity")
            if not group.min_size <= desired <= group.max_size:
                raise cfg.invalid(f"New SetDesiredCapacity value {desired} is "
                                  f"{'below min' if desired < group.min_size else 'above max'} value "
                                  f"{group.min_size if desired < group.min_size else group.max_size} for the AutoScalingGroup.")
            if honor_cooldown and time.time() - group.runtime.get("scaled_at", 0) < group.config["DefaultCooldown"]:
                raise InvalidState("Scaling activity is in progress and blocks this action (the group's cooldown "
                                   "has not expired)", code="ScalingActivityInProgress")
            self.resize(group, desired, at(time.time(), f"a user request explicitly set group desired capacity "
                                                        f"changing the desired capacity from {group.desired} to {desired}"))
        return self.group(caller.id, name)

    def resize(self, group: Group, desired: int, cause: str) -> None:
        """Move the desired capacity (a user request or a policy); the healer follows."""
        if desired != group.desired:
            self._desired_changed(group, {**group.config, "DesiredCapacity": desired}, cause)

    def live(self, owner: str, name: str) -> Group:
        group = self.group(owner, name)
        if group.deleting:
            raise InvalidState(f"AutoScalingGroup {name} is pending delete.", code="ValidationError")
        return group

    def delete_group(self, caller: "Account", name: str, force: bool = False) -> None:
        with self.request():
            group = self.group(caller.id, name)
            if group.deleting:
                return
            members = self.members(group)
            if not force:
                if members or self.launches_in_flight(group):
                    raise InvalidState("You cannot delete an AutoScalingGroup while there are instances or pending "
                                       "Spot instance request(s) still in the group.", code="ResourceInUse")
                if self.activities.in_progress(*group.key):
                    raise InvalidState("You cannot delete an AutoScalingGroup while there are scaling activities "
                                       "in progress for that group.", code="ScalingActivityInProgress")
            config = {**group.config, "MinSize": 0, "MaxSize": 0, "DesiredCapacity": 0}
            self.save(group, status=DELETING, config=config,
                      runtime={**group.runtime, "cause": at(time.time(), "a user request deleted the "
                                                                         "AutoScalingGroup")})
            self.refreshes.cancel_all(group, "the group is being deleted")
        self.healer.wake()

    def terminate_instance(self, caller: "Account", instance_id: str, decrement: bool) -> str:
        """Take one member out (the healer replaces it unless the capacity is decremented);
        returns the activity id."""
        with self.request():
            m = self.member(caller.id, instance_id)
            group = self.group(caller.id, m.group_name)
            if m.lifecycle == TERMINATING:
                return m.activity_id or ""
            now = time.time()
            if decrement:
                if group.desired <= group.min_size:
                    raise cfg.invalid(f"Currently, desiredSize equals minSize ({group.min_size}). Terminating "
                                      "instance without replacement will violate group's min size constraint. Either "
                                      "set shouldDecrementDesiredCapacity flag to false or lower group's min size.")
                cause = at(now, f"instance {instance_id} was taken out of service in response to a user request, "
                                f"shrinking the capacity from {group.desired} to {group.desired - 1}")
                self._desired_changed(group, {**group.config, "DesiredCapacity": group.desired - 1}, cause)
            else:
                cause = at(now, f"instance {instance_id} was taken out of service in response to a user request")
            return self.healer.begin_termination(group, m, cause)

    def set_instance_health(self, caller: "Account", instance_id: str, status: str,
                            respect_grace: bool = False) -> None:
        if status not in (HEALTHY, UNHEALTHY):
            raise cfg.invalid("HealthStatus must be Healthy or Unhealthy")
        with self.request():
            m = self.member(caller.id, instance_id)
            group = self.group(caller.id, m.group_name)
            since = m.in_service_at or m.launched_at
            if respect_grace and time.time() - since < group.config["HealthCheckGracePeriod"]:
                return  # as AWS: inside the grace period the report is ignored
            with self.store.tx() as c:
                c.execute("UPDATE autoscaling_members SET health=?, health_reason=? WHERE instance_id=?",
                          (status, "user health-check" if status == UNHEALTHY else "", instance_id))
        self.healer.wake()

    def set_instance_protection(self, caller: "Account", name: str, ids: list[str], protected: bool) -> None:
        with self.request():
            group = self.group(caller.id, name)
            for i in ids:
                m = self.member(caller.id, i)
                if m.group_name != group.name:
                    raise cfg.invalid(f"The instance {i} is not part of Auto Scaling group {name}.")
            with self.store.tx() as c:
                for i in ids:
                    c.execute("UPDATE autoscaling_members SET protected=? WHERE instance_id=?", (int(protected), i))

    def set_processes(self, caller: "Account", name: str, processes: list[str], suspend: bool) -> None:
        with self.request():
            group = self.group(caller.id, name)
            current = group.config.get("SuspendedProcesses", [])
            names = cfg.processes(processes)
            now = [p for p in current if p not in names] + (names if suspend else [])
            self.save(group, config={**group.config, "SuspendedProcesses": sorted(set(now))})
        self.healer.wake()

    # -- tags ----------------------------------------------------------------------------------
    def _tagged_groups(self, caller: "Account", tags: list[dict]) -> dict[str, list[dict]]:
        by_group: dict[str, list[dict]] = {}
        for t in tags or []:
            if not isinstance(t, dict) or t.get("ResourceType", "auto-scaling-group") != "auto-scaling-group":
                raise cfg.invalid("each tag needs ResourceType auto-scaling-group and a ResourceId")
            by_group.setdefault(str(t.get("ResourceId")), []).append(t)
        for name in by_group:
            self.group(caller.id, name)
        return by_group

    def put_tags(self, caller: "Account", tags: list[dict]) -> None:
        with self.request():
            for name, new in self._tagged_groups(caller, tags).items():
                group = self.group(caller.id, name)
                merged = {t["Key"]: t for t in group.config.get("Tags", [])}
                merged.update({t["Key"]: t for t in cfg.tags(new)})
                self.save(group, config={**group.config, "Tags": cfg.tags(list(merged.values()))})

    def delete_tags(self, caller: "Account", tags: list[dict]) -> None:
        with self.request():
            for name, gone in self._tagged_groups(caller, tags).items():
                group = self.group(caller.id, name)
                keys = {t.get("Key") for t in gone}
                self.save(group, config={**group.config,
                                         "Tags": [t for t in group.config.get("Tags", []) if t["Key"] not in keys]})

    # -- teaching --------------------------------------------------------------------------------
    def explain(self, caller: "Account", instance_id: str) -> dict:
        """Why an instance was (or was not) brought back: a pet has nobody watching it."""
        inst = self.cloud.get_instance(caller, instance_id)
        history = self.activities.mentioning(caller.id, instance_id)
        row = self.store.one("SELECT * FROM autoscaling_members WHERE owner=? AND instance_id=?",
                             (caller.id, instance_id))
        group = row["group_name"] if row else (history[0].group_name if history else None)
        out = {"instance_id": instance_id, "state": inst.state, "state_reason": inst.state_reason, "group": group,
               "activities": [{"description": a.description, "cause": a.cause, "status": a.status}
                              for a in history]}
        if group is None:
            out["role"] = "pet"
            out["why"] = (f"{instance_id} belongs to no Auto Scaling group: nothing watches it, so when it "
                          f"{'stopped' if inst.state != 'running' else 'fails'} nobody replaces it. Repair it by hand "
                          "(start it again) or launch it from a launch template in a group of its own (cattle).")
            return out
        out["role"] = "cattle"
        ended = history[-1] if history and history[-1].description.startswith("Terminating") else None
        later = [a for a in self.activities.list(caller.id, group) if ended and a.start_time >= ended.start_time
                 and a.description.startswith("Launching a new EC2 instance: i-") and a.status == "Successful"]
        out["replaced_by"] = later[-1].description.rsplit(" ", 1)[-1] if later else None
        out["why"] = (f"{instance_id} is a member of Auto Scaling group {group}: the group keeps its desired "
                      "capacity, so an unhealthy member is terminated and a clean one is launched from the "
                      "launch template" + (f" ({out['replaced_by']})." if out["replaced_by"] else "."))
        return out

