"""Usage rows: what the meter writes and every bill reads.

One row per (account, billing-clock hour, usage type, resource, tags), added to in place, so
the table grows with hours and resources, not with metering passes. Names follow what Cost
Explorer shows for the same usage on AWS (service names, usage types in us-east-1, units).
"""
from __future__ import annotations

import json

from .clock import hour_start, month_seconds

SERVICE_EC2 = "Amazon Elastic Compute Cloud - Compute"
SERVICE_EC2_OTHER = "EC2 - Other"
SERVICE_S3 = "Amazon Simple Storage Service"

BOX_USAGE = "BoxUsage:"                  # + instance type; Hrs
VOLUME_USAGE = "EBS:VolumeUsage.gp3"     # GB-Mo (provisioned)
SNAPSHOT_USAGE = "EBS:SnapshotUsage"     # GB-Mo (stored)
TRANSFER_OUT = "DataTransfer-Out-Bytes"  # GB
S3_STORAGE = "TimedStorage-ByteHrs"      # GB-Mo
S3_TIER1 = "Requests-Tier1"              # PUT, COPY, POST, LIST
S3_TIER2 = "Requests-Tier2"              # GET and all other

GIB = float(1 << 30)


def tags_key(tags: dict | None) -> str:
    return json.dumps(dict(sorted((tags or {}).items())), separators=(",", ":"))


def add(c, *, account: str, hour: float, service: str, usage_type: str, resource: str, quantity: float,
        unit: str, cost: float, attrs: dict | None = None, tags: dict | None = None) -> None:
    if quantity == 0 and cost == 0:
        return
    c.execute(
        "INSERT INTO usage (account, hour, service, usage_type, resource, attrs, tags, quantity, unit, cost) "
        "VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (account, hour, usage_type, resource, tags) DO UPDATE SET "
        "quantity = quantity + excluded.quantity, cost = cost + excluded.cost",
        (account, hour, service, usage_type, resource, json.dumps(attrs or {}, sort_keys=True), tags_key(tags),
         quantity, unit, cost))


def hour_slices(sim_a: float, sim_b: float):
    """[a, b) cut at billing-clock hour boundaries: (hour start, slice start, slice end)."""
    t = sim_a
    while t < sim_b:
        h = hour_start(t)
        end = min(sim_b, h + 3600)
        yield h, t, end
        t = end


def add_hours(c, *, sim_a: float, sim_b: float, price_per_hour: float, **row) -> float:
    """Time-based usage billed in hours (instances). Returns the sim seconds billed."""
    for h, a, b in hour_slices(sim_a, sim_b):
        q = (b - a) / 3600.0
        add(c, hour=h, quantity=q, unit="Hrs", cost=q * price_per_hour, **row)
    return max(0.0, sim_b - sim_a)


def add_gb_months(c, *, sim_a: float, sim_b: float, byte_seconds: float, price_per_gb_month: float, **row) -> None:
    """Storage billed in GB-months: `byte_seconds` (on the billing clock) spread evenly over
    [a, b), each slice divided by the length of its own calendar month, as AWS prorates."""
    span = sim_b - sim_a
    if span <= 0 or byte_seconds <= 0:
        return
    for h, a, b in hour_slices(sim_a, sim_b):
        q = byte_seconds * ((b - a) / span) / GIB / month_seconds(h)
        add(c, hour=h, quantity=q, unit="GB-Mo", cost=q * price_per_gb_month, **row)
