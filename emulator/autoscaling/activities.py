"""Scaling activities: every launch and termination a group makes, with AWS's wording.

A cause is built from "At <time> <what happened>." sentences, as Auto Scaling writes them,
so a student reading `aws autoscaling describe-scaling-activities` here reads what they
would read on AWS.
"""
from __future__ import annotations

import json
import time
import uuid

from ..state import Store
from .model import Activity, iso

DONE = ("Successful", "Failed", "Cancelled")


def at(ts: float, text: str) -> str:
    return f"At {iso(ts)} {text}."


def join(*sentences: str) -> str:
    return "  ".join(s for s in sentences if s)


class Activities:
    def __init__(self, store: Store):
        self.store = store

    def start(self, owner: str, group: str, description: str, cause: str, status: str = "InProgress",
              details: dict | None = None, progress: int = 0) -> str:
        aid = str(uuid.uuid4())
        with self.store.tx() as c:
            c.execute("INSERT INTO autoscaling_activities (id, owner, group_name, description, cause, status, "
                      "progress, details, start_time) VALUES (?,?,?,?,?,?,?,?,?)",
                      (aid, owner, group, description, cause[:1023], status, progress, json.dumps(details or {}),
                       time.time()))
        return aid

    def record(self, owner: str, group: str, description: str, cause: str, status: str = "Successful",
               message: str = "") -> str:
        """An activity that is over as soon as it starts (a failed launch, a refused action)."""
        aid = self.start(owner, group, description, cause, status=status, progress=100)
        self.finish(aid, status, message)
        return aid

    def update(self, activity_id: str, **fields) -> None:
        if "details" in fields:
            fields["details"] = json.dumps(fields["details"])
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.store.tx() as c:
            c.execute(f"UPDATE autoscaling_activities SET {sets} WHERE id=?", (*fields.values(), activity_id))

    def finish(self, activity_id: str, status: str = "Successful", message: str = "",
               description: str | None = None) -> None:
        extra = {"description": description} if description else {}
        self.update(activity_id, status=status, status_message=message[:255], progress=100, end_time=time.time(),
                    **extra)

    def get(self, activity_id: str) -> Activity | None:
        row = self.store.one("SELECT * FROM autoscaling_activities WHERE id=?", (activity_id,))
        return Activity.from_row(row) if row else None

    def list(self, owner: str, group: str | None = None, ids: list[str] | None = None,
             groups: list[str] | None = None) -> list[Activity]:
        """Newest first, as DescribeScalingActivities answers."""
        sql, params = "SELECT * FROM autoscaling_activities WHERE owner=?", [owner]
        if group is not None:
            sql += " AND group_name=?"
            params.append(group)
        if groups is not None:
            sql += f" AND group_name IN ({','.join('?' * len(groups))})"
            params += groups
        if ids:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            params += ids
        return [Activity.from_row(r) for r in self.store.query(sql + " ORDER BY start_time DESC, rowid DESC",
                                                               tuple(params))]

    def in_progress(self, owner: str, group: str) -> list[Activity]:
        rows = self.store.query("SELECT * FROM autoscaling_activities WHERE owner=? AND group_name=? AND status "
                                "NOT IN ('Successful', 'Failed', 'Cancelled')", (owner, group))
        return [Activity.from_row(r) for r in rows]

    def mentioning(self, owner: str, instance_id: str) -> list[Activity]:
        """The history of one instance (oldest first): its launch, its termination."""
        rows = self.store.query("SELECT * FROM autoscaling_activities WHERE owner=? AND description LIKE ? "
                                "ORDER BY start_time", (owner, f"%{instance_id}%"))
        return [Activity.from_row(r) for r in rows]
