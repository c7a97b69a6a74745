"""The storage operations journal with a fake engine: what a dead server left is rolled
forward, a live server's operations are left alone, and an engine that cannot answer keeps
the operation open for the next pass."""
from __future__ import annotations

import pytest

from emulator.errors import BackendUnavailable
from emulator.state import Store
from emulator.storage.journal import StorageJournal


class FakeStorage:
    def __init__(self, store, buckets=(), engine_buckets=(), uploads=()):
        self.records = set(buckets)
        self.engine_buckets = set(engine_buckets)
        self.engine_uploads = set(uploads)
        self.forgotten, self.rescanned, self.down = [], [], False
        self.buckets, self.engine, self.index = self, self, self

    # records
    def find(self, name):
        return name if name in self.records else None

    def remove(self, name):
        self.records.discard(name)

    # engine
    def _check(self):
        if self.down:
            raise BackendUnavailable("engine down")

    def create_bucket(self, name):
        self._check()
        self.engine_buckets.add(name)
        return True

    def bucket_exists(self, name):
        self._check()
        return name in self.engine_buckets

    def upload_exists(self, bucket, key, upload_id):
        self._check()
        return upload_id in self.engine_uploads

    # index
    def replace_bucket(self, name, sizes):
        self.rescanned.append((name, sizes))

    def forget_upload(self, upload_id):
        self.forgotten.append(upload_id)

    def rescan(self, name):
        self._check()
        self.rescanned.append(name)


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "state.db")


def die_in(store, op, bucket, key="", upload_id=""):
    """An operation opened by a server that then died (its row stays open)."""
    with store.tx() as c:
        c.execute("INSERT INTO storage_operations (op, bucket, object_key, upload_id, boot_id, started_at) "
                  "VALUES (?,?,?,?,?,?)", (op, bucket, key, upload_id, "dead-server", 0.0))


def test_a_dead_create_is_rolled_forward_and_closed(store):
    die_in(store, "bucket-create", "b1")
    fake = FakeStorage(store, buckets={"b1"})
    j = StorageJournal(store)
    assert j.settle(fake) == ["bucket-create b1"]
    assert "b1" in fake.engine_buckets and j.dead() == []


def test_a_dead_delete_removes_the_record_only_when_the_engine_has_no_bucket(store):
    die_in(store, "bucket-delete", "gone")
    die_in(store, "bucket-delete", "kept")
    fake = FakeStorage(store, buckets={"gone", "kept"}, engine_buckets={"kept"})
    StorageJournal(store).settle(fake)
    assert fake.records == {"kept"} and fake.rescanned == [("gone", {}), "kept"]


def test_a_dead_completion_forgets_an_upload_the_engine_finished_and_recounts(store):
    die_in(store, "multipart-complete", "b", "k", "done-upload")
    die_in(store, "multipart-complete", "b", "k2", "open-upload")
    fake = FakeStorage(store, buckets={"b"}, uploads={"open-upload"})
    StorageJournal(store).settle(fake)
    assert fake.forgotten == ["done-upload"] and fake.rescanned == ["b", "b"]


def test_a_live_servers_operations_are_never_settled(store):
    j = StorageJournal(store, boot_id="me")
    with j.track("bucket-create", "b"):
        assert j.dead() == [] and j.settle(FakeStorage(store, buckets={"b"})) == []


def test_an_engine_that_cannot_answer_keeps_the_operation_for_the_next_pass(store):
    die_in(store, "bucket-delete", "b")
    fake = FakeStorage(store, buckets={"b"})
    fake.down = True
    j = StorageJournal(store)
    assert j.settle(fake) == [] and len(j.dead()) == 1
    fake.down = False
    assert j.settle(fake) == ["bucket-delete b"] and j.dead() == []


def test_only_known_operations_are_journalled(store):
    with pytest.raises(ValueError):
        with StorageJournal(store).track("bucket-rename", "b"):
            pass
