"""The lifecycle pass (emulator/storage/expiry.py) over a real state database and a fake
engine: what is due goes from the engine and the index, what is not stays, and one bucket's
trouble does not stop the pass."""
from __future__ import annotations

import time
from types import SimpleNamespace

from emulator.errors import BackendUnavailable
from emulator.state import Store
from emulator.storage.buckets import BucketRecords
from emulator.storage.conditions import KeyLocks
from emulator.storage.doubt import KeysInDoubt
from emulator.storage.engine import Reply
from emulator.storage.expiry import LifecycleWorker
from emulator.storage.index import ObjectIndex
from emulator.storage.settings import ObjectAttrs, Settings


class FakeEngine:
    def __init__(self, broken=()):
        self.deleted, self.aborted, self.broken = [], [], set(broken)

    def delete_many(self, name, objects, quiet):
        if name in self.broken:
            raise BackendUnavailable("the engine is restarting")
        self.deleted += [(name, k) for k, _ in objects]
        return Reply(200), objects

    def abort(self, name, key, upload_id):
        self.aborted.append(upload_id)
        return Reply(204)


def make(tmp_path, engine):
    store = Store(tmp_path / "state.db")
    with store.tx() as c:
        c.execute("INSERT INTO accounts (id, name, role, created_at) VALUES ('111111111111', 'a', 'user', 0)")
        for b in ("b1", "b2"):
            c.execute("INSERT INTO buckets (name, owner, access, created_at) VALUES (?, '111111111111', 'private', 0)",
                      (b,))
    settings, index = Settings(store), ObjectIndex(store)
    storage = SimpleNamespace(settings=settings, index=index, engine=engine,
                              in_doubt=KeysInDoubt(engine, index, settings, BucketRecords(store), KeyLocks()))
    return store, storage


def test_due_objects_and_uploads_go_the_rest_stays(tmp_path):
    engine = FakeEngine(broken={"b1"})
    store, storage = make(tmp_path, engine)
    tagged_tmp = {"And": {"Prefix": "tmp/", "Tags": [{"Key": "t", "Value": "1"}]}}
    rules = [{"ID": "tmp", "Status": "Enabled", "Filter": tagged_tmp, "Expiration": {"Days": 1}},
             {"ID": "mpu", "Status": "Enabled", "Filter": {},
              "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}]
    for b in ("b1", "b2"):
        storage.settings.put(b, "lifecycle", rules)
        storage.index.record_object(b, "tmp/a", 5, ObjectAttrs([("t", "1")]))
        storage.index.record_object(b, "tmp/untagged", 5)
        storage.index.record_object(b, "keep/a", 5, ObjectAttrs([("t", "1")]))
    storage.index.record_upload("u-old", "b2", "x", "111111111111")
    now = time.time()
    worker = LifecycleWorker(storage, interval=1, day=10)
    assert worker.run_once(now) == {"expired": 0, "aborted": 0}          # nothing due yet
    assert worker.run_once(now + 15) == {"expired": 1, "aborted": 0}     # b1's engine is down: b2 still done
    assert engine.deleted == [("b2", "tmp/a")]
    assert {k for k, _, _ in storage.index.objects_in("b2")} == {"tmp/untagged", "keep/a"}
    assert {k for k, _, _ in storage.index.objects_in("b1")} == {"tmp/a", "tmp/untagged", "keep/a"}
    assert storage.in_doubt.pending() == [("b1", "tmp/a")]             # the engine may have deleted it
    assert storage.settings.object_attrs("b2", "tmp/a").tags == []      # its tags went with it
    assert worker.run_once(now + 25)["aborted"] == 1 and engine.aborted == ["u-old"]
    engine.broken.clear()
    assert worker.run_once(now + 25)["expired"] == 1 and ("b1", "tmp/a") in engine.deleted
    assert storage.in_doubt.pending() == []
