"""Small EC2 wire values shared by the renderers."""
from __future__ import annotations

import time


def iso(ts: float | None) -> str | None:
    """EC2's timestamps: ISO 8601 in UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts)) if ts else None


def private_dns(ip: str | None) -> str:
    return f"ip-{ip.replace('.', '-')}.ec2.internal" if ip else ""
