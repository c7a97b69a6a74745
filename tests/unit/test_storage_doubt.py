"""Writes lost with the S3 engine (emulator/storage/doubt.py), on the real Storage facade over
a real state database and an in-memory engine that can be killed at the worst moment: after
it applied a request and before it answered, as `rclone serve s3` killed with -9 can be.

Whatever the engine did, once it answers again the client's view is consistent: an object
either lists and can be read and deleted, or does not exist, and a bucket that lists empty
can be deleted.
"""
from __future__ import annotations

import hashlib
import threading
from types import SimpleNamespace
from urllib.parse import unquote

import pytest

from emulator.accounts import Accounts
from emulator.config import Config
from emulator.errors import BackendUnavailable, InvalidParameter, InvalidState
from emulator.state import Store
from emulator.storage.choice import Choice
from emulator.storage.conditions import KeyLocks
from emulator.storage.service import Storage
from emulator.storage.settings import ObjectAttrs


class FakeResponse:
    def __init__(self, status: int, headers: dict | None = None, body: bytes = b""):
        self.status, self.headers, self._body = status, list((headers or {}).items()), body

    def header(self, name, default=None):
        return next((v for k, v in self.headers if k.lower() == name.lower()), default)

    def read(self, limit=None):
        return self._body

    def iter(self):
        return iter([self._body] if self._body else [])

    def close(self):
        pass

    _finish = close


def error(status: int, code: str) -> FakeResponse:
    return FakeResponse(status, {}, f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode())


class FakeEngine:
    """An S3 engine in memory behind BackendClient's `request`. `kill(when)` makes the next
    write die: 'before' it is applied, or 'after' it is applied but before its answer; the
    engine is then down (every request: unreachable) until `restart()`."""

    WRITES = ("PUT", "POST", "DELETE")

    def __init__(self):
        self.buckets: dict[str, dict[str, bytes]] = {}
        self.down, self.kill_at = False, None
        self.status, self.started_at, self.restarts, self.last_error = "running", 1.0, 0, ""
        self.choice = Choice("endpoint", "http://fake", "unit test")
        self.client = self

    # the Backend the facade sees
    def kill(self, when: str) -> None:
        self.kill_at = when

    def restart(self) -> None:
        self.down, self.status, self.restarts = False, "running", self.restarts + 1

    def describe(self) -> dict:
        return {"engine": "endpoint", "status": self.status, "data_dir": None}

    def prune_empty_dirs(self, bucket) -> bool:
        return False

    # the BackendClient the engine module calls
    def request(self, method, bucket=None, key=None, query=(), headers=None, body=None, length=None):
        if self.down:
            raise BackendUnavailable("the storage engine at http://fake is unreachable: connection refused")
        when, query = self.kill_at if method in self.WRITES else None, dict(query)
        if when == "before":
            self._die()
        data = body if isinstance(body, (bytes, type(None))) else b"".join(body)
        resp = self._serve(method, bucket, key, query, headers or {}, data or b"")
        if when == "after":
            self._die()
        return resp

    def _die(self):
        self.kill_at, self.down, self.status = None, True, "restarting"
        raise BackendUnavailable("the storage engine at http://fake dropped the connection: RemoteDisconnected")

    def _serve(self, method, bucket, key, query, headers, data) -> FakeResponse:
        objects = self.buckets.get(bucket)
        if key is None:
            if method == "PUT":
                if objects is not None:
                    return error(409, "BucketAlreadyOwnedByYou")
                self.buckets[bucket] = {}
                return FakeResponse(200)
            if objects is None:
                return error(404, "NoSuchBucket")
            if method == "DELETE":
                if objects:
                    return error(409, "BucketNotEmpty")
                del self.buckets[bucket]
                return FakeResponse(204)
            if method == "HEAD":
                return FakeResponse(200)
            contents = "".join(f"<Contents><Key>{k}</Key><Size>{len(v)}</Size><ETag>\"{etag(v)}\"</ETag></Contents>"
                               for k, v in sorted(objects.items()))
            return FakeResponse(200, {}, f"<ListBucketResult>{contents}<IsTruncated>false</IsTruncated>"
                                         "</ListBucketResult>".encode())
        if objects is None:
            return error(404, "NoSuchBucket")
        if method == "PUT" and "x-amz-copy-source" in headers:
            src_bucket, _, src_key = unquote(headers["x-amz-copy-source"]).lstrip("/").partition("/")
            objects[key] = self.buckets[src_bucket][src_key]
            return FakeResponse(200, {}, f"<CopyObjectResult><ETag>\"{etag(objects[key])}\"</ETag>"
                                         "</CopyObjectResult>".encode())
        if method == "PUT":
            objects[key] = data
            return FakeResponse(200, {"ETag": f'"{etag(data)}"'})
        if method == "DELETE":
            objects.pop(key, None)
            return FakeResponse(204)
        if key not in objects:
            return error(404, "NoSuchKey")
        head = {"Content-Length": str(len(objects[key])), "ETag": f'"{etag(objects[key])}"'}
        return FakeResponse(200, head, objects[key] if method == "GET" else b"")


def etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def cloud(tmp_path):
    config = Config(home=tmp_path, s3_endpoint="")
    store = Store(config.db_path)
    accounts = Accounts(store, config.secret_key_path)
    engine = FakeEngine()
    storage = Storage(store, accounts, config, backend=engine, choice=engine.choice)
    alice, _ = accounts.create("alice")
    storage.create_bucket(alice, "bkt")
    return SimpleNamespace(storage=storage, engine=engine, alice=alice)


def listed(c) -> list[str]:
    return [o["key"] for o in c.storage.list_objects(c.alice, "bkt")["objects"]]


def put(c, key: str, data: bytes, attrs: ObjectAttrs | None = None, headers=None):
    return c.storage.put_object(c.alice, "bkt", key, data, len(data), headers or {}, attrs)


def lose_put(c, key: str, data: bytes, when: str = "after", attrs: ObjectAttrs | None = None,
             bucket: str = "bkt") -> None:
    """A PUT the engine dies under (`when`: before or after storing it), answered 503; then
    the supervisor starts the engine again."""
    c.engine.kill(when)
    with pytest.raises(BackendUnavailable):          # the client's 503
        c.storage.put_object(c.alice, bucket, key, data, len(data), {}, attrs)
    assert c.engine.down
    c.engine.restart()


def read(c, key: str) -> bytes:
    return b"".join(c.storage.get_object(c.alice, "bkt", key).iter())


def test_a_put_stored_by_the_engine_that_died_before_answering_lists_once_it_is_back(cloud):
    c = cloud
    c.engine.kill("after")
    with pytest.raises(BackendUnavailable):          # the client's 503
        put(c, "lost", b"stored all the same", ObjectAttrs([("t", "1")]))
    assert c.engine.buckets["bkt"] == {"lost": b"stored all the same"}
    assert listed(c) == []                           # the engine is down: the index answers, unchanged
    c.engine.restart()
    assert listed(c) == ["lost"]                     # settled before the listing, without a reconcile pass
    assert read(c, "lost") == b"stored all the same"
    assert c.storage.settings.object_attrs("bkt", "lost").tags == [("t", "1")]   # what the lost PUT said
    assert c.storage.usage("bkt")["bytes"] == len(b"stored all the same")        # and it counts
    c.storage.delete_object(c.alice, "bkt", "lost")
    assert listed(c) == [] and c.engine.buckets["bkt"] == {}
    c.storage.delete_bucket(c.alice, "bkt")
    assert "bkt" not in c.engine.buckets and c.storage.find_bucket("bkt") is None


def test_delete_bucket_right_after_the_restart_never_refuses_a_bucket_that_lists_empty(cloud):
    c = cloud
    lose_put(c, "lost", b"x")
    with pytest.raises(InvalidState) as e:           # the object is there: not empty, and it lists
        c.storage.delete_bucket(c.alice, "bkt")
    assert e.value.code == "BucketNotEmpty" and listed(c) == ["lost"]
    c.storage.delete_object(c.alice, "bkt", "lost")
    c.storage.delete_bucket(c.alice, "bkt")
    assert c.storage.find_bucket("bkt") is None


def test_a_reconcile_pass_after_the_restart_settles_every_key(cloud):
    c = cloud
    lose_put(c, "lost", b"abc")
    c.storage.settle_journal()                       # what the reconciler runs every pass
    assert c.storage.in_doubt.pending() == []
    assert c.storage.index.row("bkt", "lost")["etag"] == etag(b"abc")


def test_a_put_that_never_reached_the_engine_leaves_nothing(cloud):
    c = cloud
    lose_put(c, "never", b"x", "before")
    assert listed(c) == [] and c.storage.in_doubt.pending() == []
    c.storage.delete_bucket(c.alice, "bkt")


def test_an_overwrite_the_engine_stored_replaces_the_indexed_size_and_etag(cloud):
    c = cloud
    put(c, "k", b"old")
    lose_put(c, "k", b"newer bytes")
    assert c.storage.list_objects(c.alice, "bkt")["objects"][0]["size"] == len(b"newer bytes")
    assert c.storage.index.row("bkt", "k")["etag"] == etag(b"newer bytes")


def test_a_lost_overwrite_that_did_not_land_keeps_the_index_as_it_was(cloud):
    c = cloud
    put(c, "k", b"old", ObjectAttrs([("v", "old")]))
    lose_put(c, "k", b"new", "before", ObjectAttrs([("v", "new")]))
    assert listed(c) == ["k"] and c.storage.settings.object_attrs("bkt", "k").tags == [("v", "old")]


def test_a_copy_stored_by_the_engine_that_died_before_answering_lists_with_its_tags(cloud):
    c = cloud
    put(c, "src", b"source bytes")
    c.engine.kill("after")
    with pytest.raises(BackendUnavailable):
        c.storage.copy_object(c.alice, "bkt", "dst", "bkt", "src", {}, tags=[("copy", "yes")])
    c.engine.restart()
    assert listed(c) == ["dst", "src"] and read(c, "dst") == b"source bytes"
    assert c.storage.settings.object_attrs("bkt", "dst").tags == [("copy", "yes")]


def test_a_delete_the_engine_did_before_dying_is_dropped_from_the_listing(cloud):
    c = cloud
    put(c, "k", b"x")
    c.engine.kill("after")
    with pytest.raises(BackendUnavailable):
        c.storage.delete_object(c.alice, "bkt", "k")
    c.engine.restart()
    assert listed(c) == []
    c.storage.delete_bucket(c.alice, "bkt")


def test_a_conditional_write_checks_what_a_lost_put_stored(cloud):
    """If-None-Match: * must not overwrite an object a lost PUT stored but the index lacked."""
    c = cloud
    lose_put(c, "k", b"first")
    with pytest.raises(InvalidParameter) as e:
        put(c, "k", b"second", headers={"if-none-match": "*"})
    assert e.value.code == "PreconditionFailed" and read(c, "k") == b"first"


def test_a_key_a_live_write_holds_is_left_to_that_write(cloud):
    c = cloud
    lose_put(c, "k", b"lost")
    with c.storage.key_locks.held("bkt", "k"):        # a live write of the key is under way
        assert c.storage.in_doubt.settle() == 0
        assert c.storage.in_doubt.pending() == [("bkt", "k")]
    put(c, "k", b"the live write")                    # its own outcome settles the key
    assert c.storage.in_doubt.pending() == []
    assert c.storage.index.row("bkt", "k")["etag"] == etag(b"the live write")


def test_keys_of_other_buckets_are_not_settled_by_a_listing(cloud):
    c = cloud
    c.storage.create_bucket(c.alice, "other")
    lose_put(c, "k", b"x", bucket="other")
    assert listed(c) == [] and c.storage.in_doubt.pending() == [("other", "k")]
    assert [o["key"] for o in c.storage.list_objects(c.alice, "other")["objects"]] == ["k"]


def test_key_locks_taken_in_key_order_do_not_deadlock():
    locks, done = KeyLocks(), []

    def many(keys):
        for _ in range(200):
            with locks.held_all("b", keys):
                pass
        done.append(keys)

    threads = [threading.Thread(target=many, args=(ks,)) for ks in (["a", "b", "c"], ["c", "b", "a"], ["b", "a"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(done) == 3
    with locks.held("b", "x"):
        with locks.held("b", "x", wait=False) as got:
            assert got is False
    with locks.held("b", "x", wait=False) as got:
        assert got is True


def test_settling_stops_quietly_while_the_engine_is_down(cloud):
    c = cloud
    c.engine.kill("after")
    with pytest.raises(BackendUnavailable):
        put(c, "k", b"x")
    assert c.storage.in_doubt.settle() == 0 and c.storage.in_doubt.pending() == [("bkt", "k")]
    c.storage.settle_journal()                       # a reconcile pass while the engine restarts
    assert c.storage.in_doubt.pending() == [("bkt", "k")]
    c.engine.restart()
    c.storage.settle_journal()
    assert c.storage.in_doubt.pending() == [] and c.storage.index.row("bkt", "k")["size"] == 1
