"""A cloud on a fake engine for the billing unit tests (the wall clock is conftest.wall)."""
from __future__ import annotations

import time

from emulator.config import Config
from emulator.services import Cloud

from .test_services_fake import FakeDriver


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
