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


@pytest.fixture(autouse=True)
def no_host_networking(monkeypatch):
    """Unit tests run on fakes and never touch the host's bridges or nftables: a Cloud built from
    Config's defaults (VPC networking on) would. A test of the networking code asks for it with
    Config(vpc_networking="on") and fakes the kernel side."""
    monkeypatch.setenv("POCKETCLOUD_VPC_NETWORKING", "off")
