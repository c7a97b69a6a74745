"""A cloud on a fake engine with a hand-driven wall clock, for the billing unit tests."""
from __future__ import annotations

import time

import pytest

from emulator.config import Config
from emulator.services import Cloud

from .test_services_fake import FakeDriver

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


def make_cloud(tmp_path, scale: str = "60", **config) -> Cloud:
    c = Cloud(Config(home=tmp_path / "home", recipes_dir=tmp_path / "none", time_scale=scale, **config),
              drivers={"container": FakeDriver()})
    c.images.register("tiny", "container", "fake:tiny", "test")
    c.bootstrap()
    return c


def add_bucket(cloud, name: str, owner: str) -> None:
    with cloud.store.tx() as c:
        c.execute("INSERT INTO buckets (name, owner, created_at) VALUES (?,?,?)", (name, owner, time.time()))


def costs(cloud, account: str | None = None) -> dict[str, float]:
    """usage type -> cost, summed over every hour."""
    sql = "SELECT usage_type, SUM(cost) AS c FROM usage" + (" WHERE account=?" if account else "") + " GROUP BY 1"
    return {r["usage_type"]: r["c"] for r in cloud.store.query(sql, (account,) if account else ())}


def quantities(cloud, account: str | None = None) -> dict[str, float]:
    sql = "SELECT usage_type, SUM(quantity) AS q FROM usage" + (" WHERE account=?" if account else "") + " GROUP BY 1"
    return {r["usage_type"]: r["q"] for r in cloud.store.query(sql, (account,) if account else ())}
