"""One UTC formatter for the wire and one for people (emulator/timefmt.py)."""
from __future__ import annotations

import time

from emulator.timefmt import human_utc, iso_utc, now_iso_utc, parse_iso_utc

TS = 1795998299.75  # 2026-11-30T00:24:59.75Z


def test_wire_form_as_rest_and_aws_write_it():
    assert iso_utc(TS) == "2026-11-30T00:24:59Z"
    assert iso_utc(TS, millis=True) == "2026-11-30T00:24:59.000Z"  # EC2 and S3 timestamps
    assert iso_utc(None) is None and iso_utc(0) is None  # never happened: no timestamp, not 1970


def test_now_is_now():
    before = int(time.time())
    assert before <= parse_iso_utc(now_iso_utc()) <= time.time() + 1


def test_round_trip_through_every_wire_form():
    for text in ("2026-11-30T00:24:59Z", "2026-11-30T00:24:59.000Z", "2026-11-30T00:24:59+00:00",
                 "2026-11-30T01:24:59+01:00", "2026-11-30T00:24:59"):
        assert parse_iso_utc(text) == int(TS), text


def test_for_people_from_seconds_or_wire_text():
    assert human_utc(TS) == "2026-11-30 00:24:59 UTC"
    assert human_utc("2026-11-30T00:24:59.246Z") == "2026-11-30 00:24:59 UTC"
    assert human_utc(None) == human_utc("") == "-"
    assert human_utc("PRE") == "PRE"  # not a timestamp: shown as it is
