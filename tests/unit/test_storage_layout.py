"""The first start on a home of the old layout (each object the file at its key's path)
moves every object to its encoded name, once, and finishes a move killed half-way."""
from __future__ import annotations

import json

import pytest

from emulator.storage import keynames, layout

OLD = {"b1/a.txt": b"1", "b1/dir/x": b"22", "b1/dir/sub/y z": b"333", "b2/%41": b"4", "b2/~x": b"5",
       "b2/caf\u00e9": b"6"}


def old_home(tmp_path):
    storage, data = tmp_path / "storage", tmp_path / "storage" / "data"
    for rel, body in OLD.items():
        p = data / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
    (data / "b1" / "dir" / "up.partial").write_bytes(b"temp")   # a stand-in temp file stays put
    (data / "b3").mkdir()                                        # an empty bucket stays
    return storage, data


def files(data):
    return {p.relative_to(data).as_posix(): p.read_bytes() for p in data.rglob("*") if p.is_file()}


def expected():
    out = {}
    for rel, body in OLD.items():
        bucket, key = rel.split("/", 1)
        out[f"{bucket}/{keynames.encode(key)}"] = body
    out["b1/dir/up.partial"] = b"temp"
    return out


def test_old_layout_is_moved_once(tmp_path):
    storage, data = old_home(tmp_path)
    assert layout.migrate(storage, data) == len(OLD)
    assert files(data) == expected() and (data / "b3").is_dir()
    assert not (storage / "layout-staging").exists() and not (storage / "layout-migration.json").exists()
    assert layout.migrate(storage, data) == 0          # done: the new names are not moved again
    assert files(data) == expected()


def test_a_fresh_home_is_marked_new(tmp_path):
    assert layout.migrate(tmp_path, tmp_path / "data") == 0
    assert (tmp_path / "layout").read_text().strip() == layout.LAYOUT


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_a_move_killed_half_way_is_finished(tmp_path, phase, monkeypatch):
    storage, data = old_home(tmp_path)
    real_write = layout._write

    def dying_write(path, state):   # the process dies right after writing the journal for `phase`
        real_write(path, state)
        if state["phase"] == phase:
            raise KeyboardInterrupt
    monkeypatch.setattr(layout, "_write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        layout.migrate(storage, data)
    assert json.loads((storage / "layout-migration.json").read_text())["phase"] == phase
    monkeypatch.setattr(layout, "_write", real_write)
    layout.migrate(storage, data)
    assert files(data) == expected()
