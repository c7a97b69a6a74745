"""What an Auto Scaling group, its members and its history are, as stored rows."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..timefmt import iso_utc

# Member lifecycle states, as Auto Scaling names them.
PENDING, IN_SERVICE, TERMINATING = "Pending", "InService", "Terminating"
HEALTHY, UNHEALTHY = "Healthy", "Unhealthy"
PROCESSES = ("Launch", "Terminate", "HealthCheck", "ReplaceUnhealthy", "AZRebalance", "AlarmNotification",
             "ScheduledActions", "AddToLoadBalancer", "InstanceRefresh")
DELETING = "Delete in progress"


def iso(ts: float | None) -> str | None:
    """Auto Scaling's timestamps in causes and REST: UTC, second precision."""
    return iso_utc(ts)


def zones(region: str) -> list[str]:
    """The availability zones of the one region (issue 13 describes the same three)."""
    return [f"{region}{z}" for z in "abc"]


@dataclass
class Group:
    owner: str
    name: str
    uuid: str
    config: dict
    runtime: dict
    status: str | None
    created_at: float

    @classmethod
    def from_row(cls, row) -> "Group":
        return cls(row["owner"], row["name"], row["uuid"], json.loads(row["config"]), json.loads(row["runtime"]),
                   row["status"], row["created_at"])

    @property
    def key(self) -> tuple[str, str]:
        return self.owner, self.name

    @property
    def desired(self) -> int:
        return self.config["DesiredCapacity"]

    @property
    def min_size(self) -> int:
        return self.config["MinSize"]

    @property
    def max_size(self) -> int:
        return self.config["MaxSize"]

    @property
    def deleting(self) -> bool:
        return self.status == DELETING

    def suspended(self, process: str) -> bool:
        return process in self.config.get("SuspendedProcesses", [])

    def arn(self, region: str) -> str:
        return f"arn:aws:autoscaling:{region}:{self.owner}:autoScalingGroup:{self.uuid}:autoScalingGroupName/{self.name}"

    def propagated_tags(self) -> dict[str, str]:
        return {t["Key"]: t.get("Value", "") for t in self.config.get("Tags", []) if t.get("PropagateAtLaunch")}

    def warmup(self) -> int:
        """Seconds a new member is left alone before its numbers count (policies, refreshes)."""
        value = self.config.get("DefaultInstanceWarmup")
        return int(value) if value is not None and value >= 0 else 0


@dataclass
class Member:
    instance_id: str
    owner: str
    group_name: str
    az: str
    lifecycle: str
    health: str
    health_reason: str
    template: dict
    protected: bool
    activity_id: str | None
    launched_at: float
    in_service_at: float | None

    @classmethod
    def from_row(cls, row) -> "Member":
        d = dict(row)
        d["template"] = json.loads(d["template"])
        d["protected"] = bool(d["protected"])
        return cls(**d)

    @property
    def counts(self) -> bool:
        """Counted toward the group's capacity (AWS counts Pending and InService members)."""
        return self.lifecycle in (PENDING, IN_SERVICE) and self.health == HEALTHY

    def matches(self, template_id: str, version: int) -> bool:
        return (self.template.get("LaunchTemplateId") == template_id
                and str(self.template.get("Version")) == str(version))


@dataclass
class Activity:
    id: str
    owner: str
    group_name: str
    description: str
    cause: str
    status: str
    status_message: str
    progress: int
    details: dict
    start_time: float
    end_time: float | None

    @classmethod
    def from_row(cls, row) -> "Activity":
        d = dict(row)
        d["details"] = json.loads(d["details"])
        return cls(**d)


@dataclass
class Refresh:
    id: str
    owner: str
    group_name: str
    status: str
    status_reason: str
    config: dict
    progress: dict = field(default_factory=dict)
    start_time: float = 0.0
    end_time: float | None = None

    @classmethod
    def from_row(cls, row) -> "Refresh":
        d = dict(row)
        d["config"] = json.loads(d["config"])
        d["progress"] = json.loads(d["progress"])
        return cls(**d)

    @property
    def active(self) -> bool:
        return self.status in ("Pending", "InProgress", "Cancelling")

    @property
    def percentage(self) -> int:
        total = self.progress.get("total", 0)
        return 100 if not total else min(100, int(100 * self.progress.get("replaced", 0) / total))
