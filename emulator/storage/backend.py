"""The running S3 engine: starting it, its root credentials, and keeping it alive.

Which engine (and why) is choice.py's; this module starts what it chose — a configured
endpoint is only checked, MinIO and the stand-in are spawned and supervised here, Ceph is
booted and supervised by ceph/ in a background thread. Root credentials live in the home
(0600), never leave the server and never appear on a command line (engines get them through
their environment or 0600 files).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import signal
import socket
import string
import subprocess
import threading
import time
from pathlib import Path

from ..errors import BackendUnavailable
from . import layout
from .ceph import CephCluster
from .choice import ENGINE_NAMES, Choice, choose
from .choice import find_rclone, minio_image_present  # noqa: F401 - their old home; callers import them from here
from .client import BackendClient

log = logging.getLogger("pocketcloud.storage")

READY_TIMEOUT = 30.0
# the stand-in's temp files of uploads it never finished (see prune_empty_dirs)
TEMP_FILES = ("*.partial", ".rclone_temp_put_*", ".rclone_temp_multipart_*")


def _random(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint_credentials(config) -> tuple[str, str]:
    return config.s3_access_key, config.s3_secret_key


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Backend:
    """One running engine: endpoint + root credentials + (for spawned engines) a supervisor."""

    def __init__(self, config, choice: Choice | None = None):
        self.config = config
        self.choice = choice or choose(config)
        self.dir = Path(config.home) / "storage"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.region = getattr(config, "region", "us-east-1") or "us-east-1"
        self.endpoint = ""
        self.access_key = ""
        self.secret_key = ""
        self.client: BackendClient | None = None
        self.status = "stopped"
        self.started_at: float | None = None
        self.restarts = 0
        self.last_error = ""
        self._proc: subprocess.Popen | None = None
        self._container = None
        self._ceph: CephCluster | None = None
        self._port = 0
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None
        self.migrated = 0   # objects moved to the encoded layout by this start (layout.py)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "Backend":
        with self._lock:
            if self.status == "running":
                return self
            engine = self.choice.engine
            if engine == "endpoint":
                self.endpoint = self.choice.detail.rstrip("/")
                self.access_key, self.secret_key = endpoint_credentials(self.config)
                if not (self.access_key and self.secret_key):
                    raise BackendUnavailable(
                        f"POCKETCLOUD_S3_ENDPOINT={self.endpoint} needs root credentials: set "
                        "POCKETCLOUD_S3_ACCESS_KEY and POCKETCLOUD_S3_SECRET_KEY")
                self.client = BackendClient(self.endpoint, self.access_key, self.secret_key, self.region)
                self._wait_ready(None)
            elif engine == "ceph":
                return self._start_ceph()
            else:
                self.access_key, self.secret_key = self._root_credentials()
                self._stop = threading.Event()
                if engine == "rclone":  # keys as encoded names (issue 19): move an older home's files first
                    self.migrated = layout.migrate(self.dir, self._data_dir())
                self._spawn()
                self._monitor = threading.Thread(target=self._supervise, name="s3-backend-supervisor", daemon=True)
                self._monitor.start()
                # the engine runs in its own session (a terminal's Ctrl-C must not kill it mid-write
                # before the server drains): stop it when the server process exits
                atexit.register(self.stop)
            self.status = "running"
            self.started_at = time.time()
            log.warning("object storage: %s at %s (%s)", ENGINE_NAMES[engine], self.endpoint, self.choice.reason)
            return self

    def _start_ceph(self) -> "Backend":
        """Boot (or adopt) the cluster in the background: the server answers meanwhile, S3
        requests get ServiceUnavailable with the boot step until RGW serves."""
        def progress(line: str) -> None:
            log.warning("%s", line)
            if self.status != "running":
                self.last_error = f"Ceph is starting: {line}"

        self._ceph = CephCluster(Path(self.choice.detail), osd_size=self.config.ceph_osd_size,
                                 timeout=self.config.ceph_start_timeout, progress=progress,
                                 address=self.config.ceph_address)
        self._stop = threading.Event()
        self.status = "starting"
        self.last_error = "Ceph is starting"
        self._monitor = threading.Thread(target=self._run_ceph, name="ceph-supervisor", daemon=True)
        self._monitor.start()
        atexit.register(self.stop)
        return self

    def _run_ceph(self) -> None:
        ceph, backoff = self._ceph, 5.0
        while not self._stop.is_set():
            try:
                ceph.start()
                key, secret = ceph.credentials()
                with self._lock:
                    if self._stop.is_set():
                        return
                    self.endpoint, self.access_key, self.secret_key = ceph.endpoint(), key, secret
                    self.client = BackendClient(self.endpoint, key, secret, self.region)
                    self.status, self.started_at, self.last_error = "running", time.time(), ""
                log.warning("object storage: %s at %s (%s)", ENGINE_NAMES["ceph"], self.endpoint, self.choice.reason)
                break
            except BackendUnavailable as exc:
                if self._stop.is_set():
                    return
                self.status, self.last_error = "failed", str(exc)
                log.error("[ceph] start failed: %s; trying again in %.0f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 120.0)
        while not self._stop.wait(1.0):
            try:
                ceph.supervise_once()
            except Exception:  # noqa: BLE001 - the supervisor must outlive one bad pass
                log.exception("[ceph] supervision pass failed")

    def ceph(self) -> CephCluster | None:
        """The Ceph cluster behind this backend (placement, labs), None on other engines."""
        return self._ceph

    def placement(self, bucket: str, key: str) -> dict | None:
        """Where an object really lives on the engine (Ceph: pool, PG, acting OSDs, their files
        on the host); None where the engine has no such notion (one directory per bucket)."""
        if self._ceph is None:
            return None
        if self.status != "running":
            raise BackendUnavailable(f"the storage engine is {self.status}: {self.last_error or 'starting'}")
        return self._ceph.placement(bucket, key)

    def stop(self) -> None:
        if self._ceph is not None:
            self._stop.set()
            self._ceph.stop()
            with self._lock:
                if self.client:
                    self.client.close()
                self.status = "stopped"
            return
        if self.status == "stopped" and self._proc is None and self._container is None:
            return
        self._stop.set()
        with self._lock:
            self._terminate()
            if self.client:
                self.client.close()
            self.status = "stopped"
        if self._monitor and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5)

    def describe(self) -> dict:
        info = self._describe()
        if self._ceph is not None:
            info.update(self._ceph.describe(live=self.status == "running"))
            info["restarts"] = sum(d["restarts"] for d in info["daemons"].values())
        return info

    def _describe(self) -> dict:
        return {
            "engine": self.choice.engine,
            "name": ENGINE_NAMES[self.choice.engine],
            "endpoint": self.endpoint,
            "reason": self.choice.reason,
            "status": self.status,
            "pid": self._proc.pid if self._proc else None,
            "restarts": self.restarts,
            "data_dir": str(self._data_dir()) if self.choice.engine != "endpoint" else None,
            "last_error": self.last_error or None,
        }

    def alive(self) -> bool:
        if self.choice.engine == "endpoint":
            return True
        if self._ceph is not None:
            return self._ceph.healthy_processes()
        if self.choice.engine == "minio-docker":
            try:
                self._container.reload()
                return self._container.status == "running"
            except Exception:  # noqa: BLE001
                return False
        return self._proc is not None and self._proc.poll() is None

    def prune_empty_dirs(self, bucket: str) -> bool:
        """Clear what the rclone stand-in leaves behind in a bucket that lists no object:
        temp files of uploads it failed (`*.partial`: it answers 500 when two uploads create
        the same new folder at once; `.rclone_temp_put_*` / `.rclone_temp_multipart_*`: it was
        killed mid-upload, and hides them from listings but not from DeleteBucket) and empty
        folders. Call only when the bucket lists no object. True if anything went."""
        if self.choice.engine != "rclone":
            return False
        root = self._data_dir() / bucket
        if root.resolve().parent != self._data_dir().resolve() or not root.is_dir():
            return False
        removed = False
        temps = (f for pattern in TEMP_FILES for f in root.rglob(pattern))
        for f in temps:
            if f.is_file():
                f.unlink()
                removed = True
        for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                d.rmdir()  # only ever succeeds on an empty folder
                removed = True
            except OSError:
                pass
        return removed

    # -- internals ---------------------------------------------------------------------------
    def _data_dir(self) -> Path:
        if self.choice.engine == "ceph":
            return Path(self.choice.detail)
        return self.dir / ("minio-data" if self.choice.engine.startswith("minio") else "data")

    def _root_credentials(self) -> tuple[str, str]:
        path = self.dir / "root-credentials.json"
        try:
            data = json.loads(path.read_text())
            return data["access_key"], data["secret_key"]
        except (FileNotFoundError, ValueError, KeyError):
            key = "PCROOT" + _random(14, string.ascii_uppercase + string.digits)
            secret = _random(40)
            _write_private(path, json.dumps({"access_key": key, "secret_key": secret}))
            return key, secret

    def _kill_leftover(self) -> None:
        """A previous server of this home may have left its engine running: stop it."""
        pidfile = self.dir / "engine.pid"
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return
        if str(self._data_dir()).encode() in cmdline:
            log.warning("stopping a leftover storage engine (pid %s) of an earlier run", pid)
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.1)
            except ProcessLookupError:
                pass

    def _spawn(self) -> None:
        data = self._data_dir()
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = self.choice.engine
        last_exc = None
        for _ in range(3):
            port = self._port or free_port()
            self.endpoint = f"http://127.0.0.1:{port}"
            self.client = BackendClient(self.endpoint, self.access_key, self.secret_key, self.region)
            try:
                if engine == "minio-docker":
                    self._start_container(port, data)
                    self._wait_ready(None)
                else:
                    self._kill_leftover()
                    self._start_process(port, data)
                    self._wait_ready(self._proc)
                self._port = port
                return
            except BackendUnavailable as exc:
                last_exc = exc
                self._terminate()
                self._port = 0  # maybe the port was taken meanwhile: try another
        raise last_exc

    def _start_process(self, port: int, data: Path) -> None:
        engine = self.choice.engine
        logf = open(self.dir / f"{engine}.log", "ab")
        env = dict(os.environ)
        if engine == "rclone":
            # rclone reads any flag from RCLONE_<FLAG>; --auth-key's value is CSV, hence the quotes
            argv = [self.choice.detail, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--config", "/dev/null",
                    "--log-level", "NOTICE", str(data)]
            env["RCLONE_AUTH_KEY"] = f'"{self.access_key},{self.secret_key}"'
        else:
            argv = [self.choice.detail, "server", "--address", f"127.0.0.1:{port}",
                    "--console-address", f"127.0.0.1:{free_port()}", str(data)]
            env.update(MINIO_ROOT_USER=self.access_key, MINIO_ROOT_PASSWORD=self.secret_key,
                       MINIO_BROWSER="off", MINIO_UPDATE="off")
        log.info("starting storage engine: %s", " ".join(argv))
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                      env=env, start_new_session=True, close_fds=True)
        logf.close()
        _write_private(self.dir / "engine.pid", str(self._proc.pid))

    def _start_container(self, port: int, data: Path) -> None:
        import docker  # type: ignore

        client = docker.DockerClient(base_url=self.config.docker_url, timeout=30)
        name = f"pocketcloud-minio-{self.config.instance_label}"
        try:
            client.containers.get(name).remove(force=True)
        except Exception:  # noqa: BLE001
            pass
        self._container = client.containers.run(
            self.choice.detail, ["server", "/data"], name=name, detach=True,
            ports={"9000/tcp": ("127.0.0.1", port)}, volumes={str(data): {"bind": "/data", "mode": "rw"}},
            environment={"MINIO_ROOT_USER": self.access_key, "MINIO_ROOT_PASSWORD": self.secret_key,
                         "MINIO_BROWSER": "off"},
            labels={"pocketcloud": self.config.instance_label, "pocketcloud.role": "storage"},
        )

    def _wait_ready(self, proc: subprocess.Popen | None) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise BackendUnavailable(f"{ENGINE_NAMES[self.choice.engine]} exited with status {proc.returncode}; "
                                         f"see {self.dir / (self.choice.engine + '.log')}")
            try:
                status, _, body = self.client.simple("GET")
                if status == 200:
                    return
                last = f"HTTP {status}: {body[:200]!r}"
                if status in (401, 403) and self.choice.engine == "endpoint":
                    break
            except BackendUnavailable as exc:
                last = str(exc)
            time.sleep(0.1)
        raise BackendUnavailable(f"{ENGINE_NAMES[self.choice.engine]} at {self.endpoint} is not answering "
                                 f"ListBuckets with the root credentials ({last})")

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if proc is not None:
            try:
                (self.dir / "engine.pid").unlink()
            except FileNotFoundError:
                pass
        container, self._container = self._container, None
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass

    def _supervise(self) -> None:
        backoff = 0.5
        while not self._stop.wait(0.5):
            if self.alive():
                backoff = 0.5
                continue
            with self._lock:
                if self._stop.is_set():
                    return
                code = self._proc.returncode if self._proc else None
                log.error("storage engine %s died (exit %s); restarting", ENGINE_NAMES[self.choice.engine], code)
                self.status = "restarting"
                self.restarts += 1
                try:
                    self._terminate()
                    self._spawn()
                    self.status = "running"
                    self.last_error = ""
                except BackendUnavailable as exc:
                    self.last_error = str(exc)
                    self.status = "failed"
                    log.error("storage engine restart failed: %s", exc)
            if self.status != "running":
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30)
