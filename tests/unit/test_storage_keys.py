"""Keys a path-backed engine cannot hold side by side ('a' and 'a/0') are found in the
cloud's own index before the engine is asked (it answered 500)."""
from __future__ import annotations

import pytest

from emulator.state import Store
from emulator.storage.index import ObjectIndex


@pytest.fixture
def index(tmp_path):
    store = Store(tmp_path / "s.db")
    with store.tx() as c:
        c.execute("INSERT INTO accounts (id, name, role, created_at) VALUES ('111111111111', 'o', 'user', 0)")
        c.execute("INSERT INTO buckets (name, owner, created_at) VALUES ('b', '111111111111', 0)")
    idx = ObjectIndex(store)
    for key in ("a", "dir/x", "deep/er/obj", "folder/"):
        idx.record_object("b", key, 1)
    return idx


@pytest.mark.parametrize("key, other", [
    ("a/0", "a"), ("a/", "a"), ("a/b/c", "a"), ("dir", "dir/x"), ("deep", "deep/er/obj"), ("deep/er", "deep/er/obj"),
    ("deep/er/obj/more", "deep/er/obj"),
])
def test_conflicts(index, key, other):
    assert index.path_conflict("b", key) == other


@pytest.mark.parametrize("key", ["a", "ab", "a0", "dir/y", "dir/", "folder/inside", "deep/er/other", "deep/", "z"])
def test_no_conflict(index, key):
    assert index.path_conflict("b", key) is None
    assert index.path_conflict("elsewhere", "a/0") is None
