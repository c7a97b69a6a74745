"""UTC timestamps: one formatter for the wire (REST, EC2, S3) and one for people (console,
CLI), so every front end writes the same instant the same way.

Records keep epoch seconds; formatting happens at the edge. No Flask here: the CLI and
the services import it too.
"""
from __future__ import annotations

import datetime as _dt
import time

_WIRE = "%Y-%m-%dT%H:%M:%S"
_HUMAN = "%Y-%m-%d %H:%M:%S UTC"


def iso_utc(ts: float | None, *, millis: bool = False) -> str | None:
    """Epoch seconds -> `2026-11-30T00:24:59Z`; `millis` gives `…59.000Z` as EC2 and S3
    write it (AWS SDKs parse both). None (or 0: never happened) -> None."""
    if not ts:
        return None
    return time.strftime(_WIRE, time.gmtime(ts)) + (".000Z" if millis else "Z")


def now_iso_utc(*, millis: bool = False) -> str:
    return iso_utc(time.time(), millis=millis) or ""


def parse_iso_utc(text: str) -> float:
    """`2026-11-30T00:24:59Z`, with or without fractions or an explicit offset -> epoch seconds."""
    when = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.timestamp()


def human_utc(ts: float | str | None) -> str:
    """For people: `2026-11-30 00:24:59 UTC`, from epoch seconds or a wire timestamp; `-`
    when there is none. Text that is not a timestamp is shown as it is."""
    if not ts:
        return "-"
    if isinstance(ts, str):
        try:
            ts = parse_iso_utc(ts)
        except ValueError:
            return ts
    return time.strftime(_HUMAN, time.gmtime(ts))
