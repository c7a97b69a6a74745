"""Scaling policies: target tracking on average CPU, and simple or step scaling.

Target tracking is evaluated here every few seconds from CPU read off the engines (there is
no CloudWatch): the alarm AWS would create is this loop, and its names are reported as
AWS reports them. Scale-out needs two high samples in a row, scale-in six low ones below
90% of the target, like AWS's own asymmetry (quick out, cautious in). Simple and step
policies run when `ExecutePolicy` is called (on AWS a CloudWatch alarm would call them).
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from statistics import mean
from typing import TYPE_CHECKING

from ..errors import InvalidState, NotFound
from . import config as cfg
from .activities import at
from .metrics import CpuMeter
from .model import HEALTHY, IN_SERVICE, Group

log = logging.getLogger("pocketcloud.autoscaling")

if TYPE_CHECKING:
    from ..accounts import Account
    from .service import AutoScaling

SAMPLE_EVERY = 5.0
HIGH_POINTS, LOW_POINTS, LOW_FACTOR = 2, 6, 0.9
TYPES = ("SimpleScaling", "StepScaling", "TargetTrackingScaling")
ADJUSTMENTS = ("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity")
METRICS = ("ASGAverageCPUUtilization",)


def _number(value, name: str) -> float:
    try:
        n = float(value)
    except (TypeError, ValueError):
        raise cfg.invalid(f"{name} must be a number") from None
    if not math.isfinite(n):
        raise cfg.invalid(f"{name} must be a finite number")
    return n


def clean(spec: dict) -> dict:
    kind = spec.get("PolicyType") or "SimpleScaling"
    if kind not in TYPES:
        raise cfg.invalid(f"PolicyType {str(kind)[:40]!r} is not supported (pocketcloud: {', '.join(TYPES)})")
    out: dict = {"PolicyType": kind, "Enabled": cfg.boolean(spec.get("Enabled", True), "Enabled")}
    if spec.get("EstimatedInstanceWarmup") is not None:
        out["EstimatedInstanceWarmup"] = cfg.integer(spec["EstimatedInstanceWarmup"], "EstimatedInstanceWarmup", 0, 86400)
    if kind == "TargetTrackingScaling":
        tt = spec.get("TargetTrackingConfiguration")
        if not isinstance(tt, dict) or tt.get("TargetValue") is None:
            raise cfg.invalid("TargetTrackingConfiguration with a TargetValue is required for TargetTrackingScaling")
        if tt.get("CustomizedMetricSpecification"):
            raise cfg.invalid("customized metrics need CloudWatch, which pocketcloud does not have; use the "
                              "predefined ASGAverageCPUUtilization")
        metric = (tt.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
        if metric not in METRICS:
            raise cfg.invalid(f"PredefinedMetricType {str(metric)[:40]!r} is not supported (pocketcloud reads "
                              f"{', '.join(METRICS)} from the engines)")
        target = _number(tt["TargetValue"], "TargetValue")
        if not 0 < target <= 100:
            raise cfg.invalid("TargetValue for ASGAverageCPUUtilization must be above 0 and at most 100")
        out["TargetTrackingConfiguration"] = {
            "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
            "TargetValue": target, "DisableScaleIn": cfg.boolean(tt.get("DisableScaleIn", False), "DisableScaleIn")}
        return out
    adjustment = spec.get("AdjustmentType")
    if adjustment not in ADJUSTMENTS:
        raise cfg.invalid(f"AdjustmentType must be one of {', '.join(ADJUSTMENTS)}")
    out["AdjustmentType"] = adjustment
    if spec.get("MinAdjustmentMagnitude") is not None:
        if adjustment != "PercentChangeInCapacity":
            raise cfg.invalid("MinAdjustmentMagnitude goes with AdjustmentType PercentChangeInCapacity")
        out["MinAdjustmentMagnitude"] = cfg.integer(spec["MinAdjustmentMagnitude"], "MinAdjustmentMagnitude", 1)
    if kind == "SimpleScaling":
        if spec.get("ScalingAdjustment") is None:
            raise cfg.invalid("ScalingAdjustment is required for SimpleScaling")
        out["ScalingAdjustment"] = cfg.integer(spec["ScalingAdjustment"], "ScalingAdjustment", -10000)
        if spec.get("Cooldown") is not None:
            out["Cooldown"] = cfg.integer(spec["Cooldown"], "Cooldown", 0, 86400)
        return out
    steps = spec.get("StepAdjustments")
    if not isinstance(steps, list) or not steps:
        raise cfg.invalid("StepAdjustments are required for StepScaling")
    clean_steps = []
    for s in steps:
        if not isinstance(s, dict) or s.get("ScalingAdjustment") is None:
            raise cfg.invalid("each step adjustment needs a ScalingAdjustment")
        step = {"ScalingAdjustment": cfg.integer(s["ScalingAdjustment"], "ScalingAdjustment", -10000)}
        for bound in ("MetricIntervalLowerBound", "MetricIntervalUpperBound"):
            if s.get(bound) not in (None, ""):
                step[bound] = _number(s[bound], bound)
        clean_steps.append(step)
    out["StepAdjustments"] = clean_steps
    aggregation = spec.get("MetricAggregationType") or "Average"
    if aggregation not in ("Average", "Minimum", "Maximum"):
        raise cfg.invalid("MetricAggregationType must be Average, Minimum or Maximum")
    out["MetricAggregationType"] = aggregation
    return out


def adjust(current: int, policy: dict, adjustment: int) -> int:
    kind = policy["AdjustmentType"]
    if kind == "ExactCapacity":
        return adjustment
    if kind == "ChangeInCapacity":
        return current + adjustment
    delta = current * adjustment / 100  # AWS rounds toward zero, but never to zero
    delta = (1 if delta > 0 else -1) if 0 < abs(delta) < 1 else int(delta)
    floor = policy.get("MinAdjustmentMagnitude", 0)
    if floor and abs(delta) < floor:
        delta = floor if adjustment > 0 else -floor
    return current + delta


class Policies:
    def __init__(self, svc: "AutoScaling"):
        self.svc = svc
        self.meter = CpuMeter(svc.cloud.config.docker_url, svc.cloud.config.libvirt_uri)
        self._history: dict[tuple[str, str], deque] = {}
        self._sampled: dict[tuple[str, str], dict] = {}
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="asg-cpu")
        self._stop = threading.Event()

    # -- the API -----------------------------------------------------------------------------------
    def arn(self, group: Group, name: str, uid: str) -> str:
        return (f"arn:aws:autoscaling:{self.svc.region}:{group.owner}:scalingPolicy:{uid}:autoScalingGroupName/"
                f"{group.name}:policyName/{name}")

    def alarms(self, group: Group, uid: str) -> list[dict]:
        names = [f"TargetTracking-{group.name}-AlarmHigh-{uid}", f"TargetTracking-{group.name}-AlarmLow-{uid}"]
        return [{"AlarmName": n, "AlarmARN": f"arn:aws:cloudwatch:{self.svc.region}:{group.owner}:alarm:{n}"}
                for n in names]

    def put(self, caller: "Account", group_name: str, name, spec: dict) -> dict:
        group = self.svc.group(caller.id, group_name)
        if not isinstance(name, str) or not 1 <= len(name) <= 255 or ":" in name:
            raise cfg.invalid("PolicyName must be 1-255 characters without ':'")
        config = clean(spec)
        with self.svc.request(), self.svc.store.tx() as c:
            row = c.execute("SELECT uuid FROM autoscaling_policies WHERE owner=? AND group_name=? AND name=?",
                            (*group.key, name)).fetchone()
            uid = row[0] if row else str(uuid.uuid4())
            c.execute("INSERT OR REPLACE INTO autoscaling_policies (owner, group_name, name, uuid, config, created_at) "
                      "VALUES (?,?,?,?,?,?)", (*group.key, name, uid, json.dumps(config), time.time()))
        return self._render(group, name, uid, config)

    def list(self, caller: "Account", group_name: str | None = None, names: list[str] | None = None,
             types: list[str] | None = None) -> list[dict]:
        groups = {g.name: g for g in self.svc.groups(caller.id)}
        if group_name is not None:
            groups = {group_name: self.svc.group(caller.id, group_name)}
        rows = self.svc.store.query("SELECT * FROM autoscaling_policies WHERE owner=? ORDER BY created_at",
                                    (caller.id,))
        out = []
        for r in rows:
            if r["group_name"] not in groups or (names and r["name"] not in names):
                continue
            config = json.loads(r["config"])
            if types and config["PolicyType"] not in types:
                continue
            out.append(self._render(groups[r["group_name"]], r["name"], r["uuid"], config))
        return out

    def _render(self, group: Group, name: str, uid: str, config: dict) -> dict:
        alarms = self.alarms(group, uid) if config["PolicyType"] == "TargetTrackingScaling" else []
        return {"AutoScalingGroupName": group.name, "PolicyName": name, "PolicyARN": self.arn(group, name, uid),
                **config, "Alarms": alarms}

    def delete(self, caller: "Account", group_name: str, name: str) -> None:
        group = self.svc.group(caller.id, group_name)
        with self.svc.store.tx() as c:
            gone = c.execute("DELETE FROM autoscaling_policies WHERE owner=? AND group_name=? AND name=?",
                             (*group.key, name)).rowcount
        if not gone:
            raise NotFound(f"Policy {str(name)[:255]} of group {group_name} not found", code="ValidationError")

    def execute(self, caller: "Account", group_name: str, name: str, honor_cooldown: bool = False,
                metric_value=None, breach_threshold=None) -> None:
        group = self.svc.group(caller.id, group_name)
        found = [p for p in self.list(caller, group_name, [name])]
        if not found:
            raise NotFound(f"Policy {str(name)[:255]} of group {group_name} not found", code="ValidationError")
        policy = found[0]
        if policy["PolicyType"] == "TargetTrackingScaling":
            raise cfg.invalid("ExecutePolicy is for simple and step scaling policies, not target tracking")
        with self.svc.request():
            group = self.svc.group(*group.key)
            cooldown = policy.get("Cooldown", group.config["DefaultCooldown"])
            if honor_cooldown and time.time() - group.runtime.get("scaled_at", 0) < cooldown:
                raise InvalidState("Scaling activity is in progress and blocks this action (the cooldown has not "
                                   "expired)", code="ScalingActivityInProgress")
            if policy["PolicyType"] == "SimpleScaling":
                step = policy["ScalingAdjustment"]
            else:
                if metric_value is None or breach_threshold is None:
                    raise cfg.invalid("MetricValue and BreachThreshold are required to execute a step scaling policy")
                step = self._step(policy, _number(metric_value, "MetricValue") - _number(breach_threshold,
                                                                                         "BreachThreshold"))
            new = max(group.min_size, min(group.max_size, adjust(group.desired, policy, step)))
            self.svc.resize(group, new, at(time.time(), f"a user request executed policy {name} changing the desired "
                                                        f"capacity from {group.desired} to {new}"))

    @staticmethod
    def _step(policy: dict, distance: float) -> int:
        for s in policy["StepAdjustments"]:
            low = s.get("MetricIntervalLowerBound", -math.inf)
            high = s.get("MetricIntervalUpperBound", math.inf)
            if low <= distance < high or (high == math.inf and distance >= low):
                return s["ScalingAdjustment"]
        raise cfg.invalid(f"no step adjustment covers a metric {distance:+g} away from the breach threshold")

    # -- the alarm: target tracking evaluated from the engines ----------------------------------------
    def cpu(self, group: Group) -> dict | None:
        """The last sample of the group: average and per instance (for the console and the CLI)."""
        return self._sampled.get(group.key)

    def start(self) -> threading.Thread:
        """Sample CPU and evaluate target tracking in a thread of its own: Docker answers a
        stats request only at its next collection (up to a second), which must not delay healing."""
        thread = threading.Thread(target=self._run, name="autoscaling-metrics", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the sampler must survive an engine hiccup
                log.exception("autoscaling metrics tick failed")

    def tick(self) -> None:
        for group in self.svc.groups(None):
            if group.deleting:
                continue
            try:
                self.evaluate(group)
            except NotFound:
                continue  # deleted since the list was read
            except Exception:  # noqa: BLE001 - one group's trouble must not starve the others
                log.exception("autoscaling metrics: group %s of %s", group.name, group.owner)

    def evaluate(self, group: Group) -> None:
        now = time.time()
        members = self.svc.members(group)
        serving = [m for m in members if m.lifecycle == IN_SERVICE and m.health == HEALTHY]
        records = {i.id: i for i in self.svc.cloud.describe_instances(
            self.svc.cloud.accounts.get(group.owner), ids=[m.instance_id for m in serving])} if serving else {}
        values = list(self._pool.map(lambda m: (m.instance_id, self.meter.utilization(records[m.instance_id])
                                                if m.instance_id in records else None), serving))
        per_instance = {i: v for i, v in values if v is not None}
        self._sampled[group.key] = {"at": now, "per_instance": per_instance,
                                    "average": round(mean(per_instance.values()), 1) if per_instance else None}
        policies = [json.loads(r["config"]) | {"name": r["name"], "uuid": r["uuid"]} for r in self.svc.store.query(
            "SELECT * FROM autoscaling_policies WHERE owner=? AND group_name=?", group.key)]
        policies = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling" and p["Enabled"]]
        if not policies or group.deleting or group.suspended("AlarmNotification"):
            return
        if self.svc.refreshes.active(group) is not None:
            return  # as AWS: no target tracking while an instance refresh replaces the members
        warm = [v for i, v in per_instance.items()
                if now - (next(m for m in serving if m.instance_id == i).in_service_at or now)
                >= max(p.get("EstimatedInstanceWarmup", group.warmup()) for p in policies)]
        if not warm:
            return
        history = self._history.setdefault(group.key, deque(maxlen=LOW_POINTS))
        history.append(mean(warm))
        capacity = len(serving) or group.desired
        wanted = []
        for p in policies:
            target = p["TargetTrackingConfiguration"]["TargetValue"]
            recent = list(history)
            if len(recent) >= HIGH_POINTS and all(v > target for v in recent[-HIGH_POINTS:]):
                wanted.append((math.ceil(capacity * mean(recent[-HIGH_POINTS:]) / target), p, "AlarmHigh"))
            elif (len(recent) >= LOW_POINTS and not p["TargetTrackingConfiguration"]["DisableScaleIn"]
                  and all(v < target * LOW_FACTOR for v in recent)):
                wanted.append((max(1, math.ceil(capacity * mean(recent) / target)), p, "AlarmLow"))
        if not wanted:
            return
        # Out wins over in; in only when every policy agrees (AWS's rule for several policies).
        outs = [w for w in wanted if w[2] == "AlarmHigh"]
        if outs:
            new, policy, alarm = max(outs, key=lambda w: w[0])
        elif len(wanted) == len(policies):
            new, policy, alarm = max(wanted, key=lambda w: w[0])
        else:
            return
        with self.svc.lock:
            current = self.svc.group(*group.key)
            new = max(current.min_size, min(current.max_size, new))
            if (alarm == "AlarmHigh" and new <= current.desired) or (alarm == "AlarmLow" and new >= current.desired):
                return
            self.svc.resize(current, new, at(now, f"a monitor alarm TargetTracking-{group.name}-{alarm}-"
                                                  f"{policy['uuid']} in state ALARM triggered policy {policy['name']} "
                                                  f"changing the desired capacity from {current.desired} to {new}"))
        history.clear()
