"""Settings from the environment (and CLI flags, which override them)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Config:
    home: Path = field(default_factory=lambda: Path(_env("POCKETCLOUD_HOME", "~/.pocketcloud")).expanduser())
    host: str = field(default_factory=lambda: _env("POCKETCLOUD_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("POCKETCLOUD_PORT", "4566")))
    region: str = field(default_factory=lambda: _env("POCKETCLOUD_REGION", "us-east-1"))
    docker_url: str = field(default_factory=lambda: _env("DOCKER_HOST", "unix:///var/run/docker.sock"))
    libvirt_uri: str = field(default_factory=lambda: _env("POCKETCLOUD_LIBVIRT_URI", "qemu:///system"))
    hypervisor: str = field(default_factory=lambda: _env("POCKETCLOUD_HYPERVISOR", "auto"))
    recipes_dir: Path = field(default_factory=lambda: Path(_env("POCKETCLOUD_RECIPES", str(REPO_ROOT / "images"))))
    cache_dir: Path = field(default_factory=lambda: Path(_env("POCKETCLOUD_CACHE", "~/.cache/pocketcloud")).expanduser())
    vm_network: str = field(default_factory=lambda: _env("POCKETCLOUD_VM_NETWORK", "pocketcloud"))
    vm_cidr: str = field(default_factory=lambda: _env("POCKETCLOUD_VM_CIDR", "10.213.0.0/24"))
    s3_endpoint: str = field(default_factory=lambda: _env("POCKETCLOUD_S3_ENDPOINT", ""))
    # auto (endpoint > MinIO > a Ceph cluster this home already has > stand-in), or one of
    # ceph / minio / rclone to ask for that engine (an explicit endpoint still wins).
    s3_engine: str = field(default_factory=lambda: _env("POCKETCLOUD_S3_ENGINE", "auto"))
    # Size of each of the three Ceph OSDs' BlueStore file (sparse: only what is written uses disk).
    ceph_osd_size: int = field(default_factory=lambda: int(_env("POCKETCLOUD_CEPH_OSD_SIZE", str(4 << 30))))
    # Seconds a Ceph bootstrap (or a start of an existing cluster) may take before it is a failure.
    ceph_start_timeout: float = field(default_factory=lambda: float(_env("POCKETCLOUD_CEPH_TIMEOUT", "240")))
    # A terminated instance stays listed this long, as on EC2, then is forgotten.
    terminated_ttl: int = field(default_factory=lambda: int(_env("POCKETCLOUD_TERMINATED_TTL", "3600")))
    max_rest_body: int = 1024 * 1024
    stop_timeout: int = 10

    @property
    def db_path(self) -> Path:
        return self.home / "state.db"

    @property
    def credentials_path(self) -> Path:
        return self.home / "credentials"

    @property
    def secret_key_path(self) -> Path:
        return self.home / "master.key"

    @property
    def endpoint_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def instance_label(self) -> str:
        """Distinguishes this cloud's engine objects from another cloud's on the same host."""
        import hashlib

        return hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]

    def with_(self, **changes) -> "Config":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
