"""Unit-test fixtures: a wall clock under the test's control."""
from __future__ import annotations

import time

import pytest

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Wall:
    """time.time() under the test's control (the meter, the services and the store all read it)."""

    def __init__(self, monkeypatch, start: float = T0):
        self.now = start
        monkeypatch.setattr(time, "time", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def wall(monkeypatch):
    return Wall(monkeypatch)
