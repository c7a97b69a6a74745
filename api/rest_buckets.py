"""JSON REST for object storage under /api/v1 (curl-friendly), over cloud.storage.

Register next to the main REST blueprint: `flask_app.register_blueprint(rest_buckets.bp)`.
Auth, error shape and helpers are the main REST API's (api/rest.py).

    GET    /api/v1/buckets                              own + shared buckets, with usage
    POST   /api/v1/buckets              {"name", "access"?}
    GET    /api/v1/buckets/NAME                         access, grants, usage
    GET    /api/v1/buckets/NAME/internals[?key=KEY]     the engine, bytes on the host; KEY: where it lives
    DELETE /api/v1/buckets/NAME[?force=true]            409 BucketNotEmpty unless force
    GET    /api/v1/buckets/NAME/objects[?prefix=&delimiter=&limit=&token=]
    PUT    /api/v1/buckets/NAME/objects/KEY             body = the object (curl -T FILE)
    GET    /api/v1/buckets/NAME/objects/KEY             the object (Range supported)
    DELETE /api/v1/buckets/NAME/objects/KEY
    POST   /api/v1/buckets/NAME/presign {"key", "expires"?, "method"?}
    PUT    /api/v1/buckets/NAME/access  {"access": "private" | "public-read"}
    PUT    /api/v1/buckets/NAME/shares/ACCOUNT {"level": "read" | "read-write"}
    DELETE /api/v1/buckets/NAME/shares/ACCOUNT
    GET    /api/v1/storage                              the caller's usage and quota; the engine
"""
from __future__ import annotations

import time

from flask import Blueprint, Response, g, jsonify, request

from emulator.errors import EngineError, InvalidParameter, NotFound
from emulator.timefmt import iso_utc

from .limits import OBJECT_PUT, body_limit
from .rest import _only, authenticated, body, cloud

bp = Blueprint("rest_buckets", __name__, url_prefix="/api/v1")
PIECE = 1024 * 1024


def storage():
    return cloud().storage


def _bucket_dict(b) -> dict:
    d = b.to_dict()
    d["usage"] = storage().usage(b.name)
    d["owned"] = b.owner == g.account.id
    if d["owned"]:
        names = {}
        for grant in d["grants"]:
            try:
                names[grant["account"]] = cloud().accounts.get(grant["account"]).name
            except NotFound:
                pass
            grant["account_name"] = names.get(grant["account"])
    else:
        d["grants"] = []
        d["my_access"] = b.level_of(g.account)
    return d


@bp.get("/buckets")
@authenticated
def list_buckets():
    s = storage()
    return jsonify(buckets=[_bucket_dict(b) for b in s.list_buckets(g.account)],
                   usage=s.account_usage(g.account.id))


@bp.post("/buckets")
@authenticated
def create_bucket():
    data = _only(body(), {"name", "access"})
    b = storage().create_bucket(g.account, data.get("name"), access=data.get("access", "private"))
    return jsonify(_bucket_dict(b)), 201


@bp.get("/buckets/<name>")
@authenticated
def get_bucket(name: str):
    return jsonify(_bucket_dict(storage().authorize(g.account, name, "list")))


@bp.get("/buckets/<name>/internals")
@authenticated
def bucket_internals(name: str):
    return jsonify(storage().bucket_internals(g.account, name, request.args.get("key")))


@bp.delete("/buckets/<name>")
@authenticated
def delete_bucket(name: str):
    force = request.args.get("force", "").lower() in ("1", "true", "yes")
    storage().delete_bucket(g.account, name, force=force)
    return "", 204


@bp.get("/buckets/<name>/objects")
@authenticated
def list_objects(name: str):
    try:
        limit = int(request.args.get("limit", "1000"))
    except ValueError:
        limit = -1
    if not 1 <= limit <= 1000:
        raise InvalidParameter("limit must be between 1 and 1000")
    page = storage().list_objects(g.account, name, prefix=request.args.get("prefix", ""),
                                  delimiter=request.args.get("delimiter", ""), max_keys=limit,
                                  continuation_token=request.args.get("token") or None)
    return jsonify(bucket=name, objects=page["objects"], prefixes=page["prefixes"], next_token=page["next_token"])


def _stream_request_body(length: int):
    stream = request.stream
    left = length
    while left > 0:
        piece = stream.read(min(PIECE, left))
        if not piece:
            break  # the client went away: the engine gets a short body and keeps nothing
        left -= len(piece)
        yield piece


@bp.put("/buckets/<name>/objects/<path:key>")
@body_limit(OBJECT_PUT)
@authenticated
def put_object(name: str, key: str):
    length = request.content_length
    if length is None:
        raise InvalidParameter("send the object with a Content-Length (curl -T FILE does)",
                               code="MissingContentLength")
    headers = {"content-type": request.content_type} if request.content_type else {}
    reply = storage().put_object(g.account, name, key, _stream_request_body(length), length, headers)
    if reply.status != 200:
        raise EngineError(f"the storage engine refused the upload ({reply.status}): {reply.body()[:200]!r}")
    return jsonify(bucket=name, key=key, size=length, etag=(reply.header("etag") or "").strip('"')), 201


@bp.get("/buckets/<name>/objects/<path:key>")
@authenticated
def get_object(name: str, key: str):
    headers = {"range": request.headers["Range"]} if "Range" in request.headers else {}
    resp = storage().get_object(g.account, name, key, headers)
    if resp.status == 404:
        resp.close()
        raise NotFound(f"no object {key!r} in bucket {name}", code="NoSuchKey")
    if resp.status not in (200, 206):
        raise EngineError(f"the storage engine answered {resp.status}: {resp.body()[:200]!r}")
    status = 206 if resp.header("content-range") else 200
    out = Response(resp.iter(), status=status, direct_passthrough=True)
    for h in ("content-type", "content-length", "content-range", "etag", "last-modified", "accept-ranges"):
        v = resp.header(h)
        if v:
            out.headers[h] = v
    out.call_on_close(resp.close)
    return out


@bp.delete("/buckets/<name>/objects/<path:key>")
@authenticated
def delete_object(name: str, key: str):
    storage().delete_object(g.account, name, key)
    return "", 204


@bp.post("/buckets/<name>/presign")
@authenticated
def presign(name: str):
    data = _only(body(), {"key", "expires", "method"})
    expires = data.get("expires", 3600)
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise InvalidParameter("expires must be a number of seconds (1-604800)")
    auth = request.authorization
    url = storage().presign(g.account, auth.username, auth.password or "", name, data.get("key"),
                            expires=expires, method=str(data.get("method", "GET")).upper(),
                            endpoint=request.host_url)
    return jsonify(url=url, method=str(data.get("method", "GET")).upper(),
                   expires_at=iso_utc(time.time() + expires))


@bp.put("/buckets/<name>/access")
@authenticated
def set_access(name: str):
    data = _only(body(), {"access"})
    return jsonify(_bucket_dict(storage().set_access(g.account, name, data.get("access"))))


@bp.put("/buckets/<name>/shares/<account>")
@authenticated
def share(name: str, account: str):
    data = _only(body(), {"level"})
    return jsonify(_bucket_dict(storage().grant(g.account, name, account, data.get("level", "read"))))


@bp.delete("/buckets/<name>/shares/<account>")
@authenticated
def unshare(name: str, account: str):
    return jsonify(_bucket_dict(storage().grant(g.account, name, account, None)))


@bp.get("/storage")
@authenticated
def storage_usage():
    s = storage()
    out = {"usage": s.account_usage(g.account.id)}
    if g.account.is_admin:
        out["engine"] = s.describe()
    return jsonify(out)
