"""The NoCloud seed (cloud-init's `meta-data` and `user-data`) both kinds of instance get.

One content for both engines: a container receives it as files under SEED_DIR (put into
the container before it starts), a VM as an ISO9660 volume labelled `cidata`. The image's
init (tiny's /sbin/init, or cloud-init on debian-12) reads the same files either way.
"""
from __future__ import annotations

import io
import tarfile
import time

from ..errors import InvalidParameter
from .sshkeys import validate_public_key

SEED_DIR = "var/lib/cloud/seed/nocloud"
VOLUME_LABEL = "cidata"


def meta_data(instance_id: str, hostname: str, ssh_keys: tuple[str, ...] = ()) -> str:
    """cloud-init's meta-data (YAML). Every value is checked here, so no value can add a
    line or a key of its own to the YAML."""
    for what, value in (("instance id", instance_id), ("hostname", hostname)):
        if not value or any(c.isspace() or c in ":#'\"{}[]" for c in value) or len(value) > 64:
            raise InvalidParameter(f"invalid {what} {value[:70]!r} for the instance's seed")
    keys = [validate_public_key(k) for k in ssh_keys]
    out = f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"
    if keys:
        out += "public-keys:\n" + "".join(f"  - {k}\n" for k in keys)
    return out


def seed_files(instance_id: str, hostname: str, user_data: str, ssh_keys: tuple[str, ...] = ()) -> dict[str, str]:
    """{file name: content} of the seed, in the order cloud-init reads them."""
    if "\x00" in user_data:
        raise InvalidParameter("user_data must not contain NUL bytes")
    return {"meta-data": meta_data(instance_id, hostname, ssh_keys), "user-data": user_data}


def seed_tar(files: dict[str, str]) -> bytes:
    """The seed as a tar to unpack at / (a container's way in: `put_archive` before start)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            raw = data.encode()
            info = tarfile.TarInfo(f"{SEED_DIR}/{name}")
            info.size, info.mode, info.mtime = len(raw), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()
