"""The S3 engine as an operator and a student see it, beside the Storage facade (a mixin):

- for admins, the Ceph cluster: health, OSDs, PGs and hosts read fresh, and one daemon
  killed (and held down) or released — what `pocketcloud storage` and `lab durability` use;
- for a bucket's internals (whoever may list the bucket): where its objects really are —
  on Ceph the pool, the PG, the acting OSDs with their hosts and files; on the one-process
  engines the file or folder under the engine's data directory.

The other engines have no daemons to show or kill: a clear error says how to get Ceph.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..accounts import Account
from ..errors import BackendUnavailable, Forbidden, InvalidState
from . import keynames
from .buckets import validate_key
from .ceph import hosts as ceph_hosts

HOW_TO_CEPH = ("Ceph: install its Debian packages (scripts/ceph-packages.sh) and start the cloud on a new home "
               "with POCKETCLOUD_S3_ENGINE=ceph (POCKETCLOUD_CEPH_ADDRESS=ADDR too, for other machines to join)")


class EngineAdmin:
    """Mixed into Storage, which provides `backend` and `describe()`."""

    def _cluster(self, account: Account | None):
        if account is None or not account.is_admin:
            raise Forbidden("only an admin can see or change the storage engine's daemons")
        backend = self.backend
        ceph = backend.ceph()
        if ceph is None:
            raise InvalidState(f"the storage engine is {backend.describe()['name']}, one process with no cluster "
                               f"of daemons. {HOW_TO_CEPH}", code="NotACluster")
        if backend.status != "running":
            raise BackendUnavailable(f"the storage engine is {backend.status}: {backend.last_error or 'starting'}")
        return ceph

    def engine_cluster(self, account: Account | None) -> dict:
        """The cluster read now: health and why, serving ok/degraded/unavailable, OSDs up/in,
        PG states, every daemon of this host, and every host with its OSDs."""
        ceph = self._cluster(account)
        ceph.status(fresh=True)
        info = {"engine": "ceph", **ceph.describe(live=True)}
        info["hosts"] = ceph_hosts.view(ceph)
        return info

    def kill_engine_daemon(self, account: Account | None, name: str, hold: bool = True) -> dict:
        """SIGKILL one daemon of this host (osd.N, mon.a, mgr.x, rgw); held down (the supervisor
        leaves it dead) until released, unless hold is False."""
        ceph = self._cluster(account)
        if hold:
            ceph.hold(name)
        pid = ceph.kill(name)
        return {"daemon": name, "pid": pid, "held": hold, "was_running": pid is not None}

    def release_engine_daemon(self, account: Account | None, name: str) -> dict:
        """Let the supervisor restart a held daemon (within a second or two)."""
        ceph = self._cluster(account)
        ceph.release(name)
        return {"daemon": name, "held": False}

    def engine_view(self, internals: dict, key: str | None) -> dict:
        """Bucket internals completed with the engine's own view (and one object's, given a key)."""
        backend = self.backend
        engine = internals["engine"].get("engine")
        name = internals["bucket"]
        if key is not None:
            validate_key(key)
        ceph = backend.ceph()
        if ceph is not None:
            if backend.status == "running":
                return _ceph_view(ceph, internals, name, key)
            if key is not None:  # an object's placement needs the cluster
                raise BackendUnavailable(f"the storage engine is {backend.status}: {backend.last_error or 'starting'}")
            internals["ceph"] = None  # the cluster is starting (or failed): the rest still holds
            internals["bytes_on_host"] = {"path": None, "note": f"inside the Ceph cluster's OSDs, which is "
                                                               f"{backend.status} now"}
            return internals
        data_dir = internals["engine"].get("data_dir")
        if key is not None and data_dir and engine in ("rclone", "minio", "minio-docker"):
            base = Path(data_dir) / name
            path = base / (keynames.encode(key) if engine == "rclone" else key)
            # a key may start with '/' (an absolute path to pathlib): never look outside the bucket
            inside = os.path.realpath(path).startswith(os.path.realpath(base) + os.sep)
            exists = inside and (path.is_file() if engine == "rclone" else (path / "xl.meta").is_file())
            internals["object"] = {
                "key": key, "host_path": str(path) if inside else None, "exists": exists,
                "size": path.stat().st_size if exists and engine == "rclone" else None,
                "note": "one plain file, its path the key encoded (folders split at '/', the file's name "
                        "starts with '~')" if engine == "rclone" else
                        "a folder per key: xl.meta (metadata, small objects inline) and part files"}
        return internals


def _ceph_view(ceph, internals: dict, name: str, key: str | None) -> dict:
    summary = ceph.status()
    bucket = ceph.bucket_view(name)
    state = ceph.state
    blocks = []
    for o in state.osds:
        path = ceph.layout.osd_data(o["id"]) / "block"
        try:
            st = os.stat(path)
            blocks.append({"osd": o["id"], "path": str(path), "size": st.st_size, "allocated": st.st_blocks * 512})
        except FileNotFoundError:
            blocks.append({"osd": o["id"], "path": str(path), "size": None, "allocated": None})
    internals["ceph"] = {
        **bucket, "fsid": state.fsid, "health": summary["health"], "health_reason": summary["health_reason"],
        "serving": summary["serving"], "osds": summary["osds"], "pgs": summary["pgs"],
        "how": f"each S3 object is a RADOS object named {bucket['bucket_marker']}_KEY in the pool {bucket['pool']} "
               "(above 4 MiB, tail objects hold the rest); CRUSH maps its name to a placement group (PG) and the "
               "PG to 3 OSDs (the acting set, primary first), which each keep a replica",
    }
    internals["bytes_on_host"] = {
        "path": str(ceph.layout.root / "osd"), "files": blocks,
        "note": "BlueStore: objects live inside each OSD's block file (sparse: allocated is what is used), "
                "not as files of their own; OSDs on added hosts keep theirs on those machines"}
    internals["request_path"][-1] = (f"RGW writes the object into RADOS: pool {bucket['pool']}, one PG, "
                                     "three OSDs (`ceph osd map` says which)")
    if key is not None:
        internals["object"] = ceph.placement(name, key, marker=bucket["bucket_marker"])
    return internals
