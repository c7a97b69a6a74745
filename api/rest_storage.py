"""JSON REST for the S3 engine's machinery (admins only), over cloud.storage:

    GET  /api/v1/storage/cluster                     Ceph read now: health, OSDs, PGs, daemons, hosts
    GET  /api/v1/storage/hosts                       the hosts with their OSDs (up/down, in/out)
    POST /api/v1/storage/daemons/NAME/kill {"hold"?} SIGKILL a daemon of this host (held down by default)
    POST /api/v1/storage/daemons/NAME/release        let the supervisor restart it

On an engine without a cluster (the stand-in, MinIO) these answer 409 NotACluster with how
to run Ceph. Adding machines is `pocketcloud storage add-host`, on the cloud's host.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from emulator.errors import InvalidParameter

from .rest import _only, authenticated, body, cloud

bp = Blueprint("rest_storage", __name__, url_prefix="/api/v1")


@bp.get("/storage/cluster")
@authenticated
def describe_cluster():
    return jsonify(cloud().storage.engine_cluster(g.account))


@bp.get("/storage/hosts")
@authenticated
def list_hosts():
    return jsonify(hosts=cloud().storage.engine_cluster(g.account)["hosts"])


@bp.post("/storage/daemons/<name>/kill")
@authenticated
def kill_daemon(name: str):
    data = _only(body(), {"hold"})
    hold = data.get("hold", True)
    if not isinstance(hold, bool):
        raise InvalidParameter("hold must be true or false")
    return jsonify(cloud().storage.kill_engine_daemon(g.account, name, hold=hold))


@bp.post("/storage/daemons/<name>/release")
@authenticated
def release_daemon(name: str):
    _only(body(), set())
    return jsonify(cloud().storage.release_engine_daemon(g.account, name))
