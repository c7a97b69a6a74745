"""Backend lifecycle against real engines: the configured endpoint wins, the stand-in starts
when nothing else is there, and a dead engine is restarted by the supervisor."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from emulator.storage import Storage
from emulator.storage.backend import Backend, choose, find_rclone, free_port
from emulator.storage.client import BackendClient

from .conftest import make_cloud, rclone_binary

pytestmark = pytest.mark.integration


@pytest.fixture
def external_engine(tmp_path):
    """An S3 engine that pocketcloud did not start (stands for compose.yaml's MinIO)."""
    port = free_port()
    data = tmp_path / "external-data"
    data.mkdir()
    key, secret = "EXTERNALROOTKEY12345", "external-secret-external-secret-12345678"
    proc = subprocess.Popen([rclone_binary(), "serve", "s3", "--addr", f"127.0.0.1:{port}", "--config", "/dev/null",
                             "--auth-key", f"{key},{secret}", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = BackendClient(f"http://127.0.0.1:{port}", key, secret)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.simple("GET")[0] == 200:
                break
        except Exception:  # noqa: BLE001
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", key, secret, data
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(10)


def test_endpoint_from_config_wins(tmp_path, external_engine, monkeypatch):
    url, key, secret, data = external_engine
    monkeypatch.setenv("POCKETCLOUD_S3_ACCESS_KEY", key)
    monkeypatch.setenv("POCKETCLOUD_S3_SECRET_KEY", secret)
    cloud = make_cloud(tmp_path / "home")
    config = cloud.config.with_(s3_endpoint=url)
    storage = Storage(cloud.store, cloud.accounts, config).start()  # default choice: nothing injected
    try:
        info = storage.describe()
        assert info["engine"] == "endpoint" and info["endpoint"] == url and info["pid"] is None
        assert secret not in str(info)
        owner, _ = cloud.accounts.create("owner")
        storage.create_bucket(owner, "on-the-external-engine")
        assert (data / "on-the-external-engine").is_dir()  # it landed in the engine we pointed at
        storage.delete_bucket(owner, "on-the-external-engine")
    finally:
        storage.close()
    assert not (tmp_path / "home" / "storage" / "data").exists()  # no stand-in was started


def test_endpoint_with_wrong_credentials_is_a_clear_error(tmp_path, external_engine, monkeypatch):
    url, key, _, _ = external_engine
    monkeypatch.setenv("POCKETCLOUD_S3_ACCESS_KEY", key)
    monkeypatch.setenv("POCKETCLOUD_S3_SECRET_KEY", "wrong-wrong-wrong-wrong-wrong-wrong-wrong")
    cloud = make_cloud(tmp_path / "home")
    storage = Storage(cloud.store, cloud.accounts, cloud.config.with_(s3_endpoint=url))
    from emulator.errors import BackendUnavailable

    with pytest.raises(BackendUnavailable) as e:
        storage.start()
    assert url in str(e.value)
    assert storage.describe()["status"] == "unavailable"


def test_standin_starts_when_nothing_else_and_is_supervised(tmp_path):
    cloud = make_cloud(tmp_path / "home")
    choice = choose(cloud.config, which=lambda n: None, docker_image=lambda u: None)
    assert choice.engine == "rclone" and choice.detail == find_rclone()
    backend = Backend(cloud.config, choice).start()
    try:
        info = backend.describe()
        assert info["engine"] == "rclone" and info["status"] == "running" and "stand-in" in info["name"]
        creds = (tmp_path / "home" / "storage" / "root-credentials.json")
        assert oct(creds.stat().st_mode & 0o777) == "0o600"
        pid = info["pid"]
        assert backend.client.simple("PUT", "survives")[0] == 200
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (backend.describe()["pid"] not in (None, pid)
                                                     and backend.status == "running"):
            time.sleep(0.1)
        assert backend.describe()["pid"] != pid and backend.restarts == 1
        status, _, body = backend.client.simple("GET")
        assert status == 200 and b"survives" in body  # same data dir, same endpoint
    finally:
        backend.stop()
    assert backend.describe()["pid"] is None
    assert not os.path.exists(f"/proc/{pid}") or b"rclone" not in open(f"/proc/{pid}/cmdline", "rb").read()
