"""JSON REST API under /api/v1. Auth: HTTP Basic with access key id and secret (curl -u).

Errors (CloudError, routing errors, anything unexpected) are rendered by the one handler
api/errors.py registers on the app."""
from __future__ import annotations

import functools

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import UnsupportedMediaType

from emulator.errors import Forbidden, InvalidParameter, Unauthorized

bp = Blueprint("rest", __name__, url_prefix="/api/v1")


def cloud():
    return current_app.config["CLOUD"]


def authenticated(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        auth = request.authorization
        if auth is None or auth.type != "basic" or not auth.username:
            raise Unauthorized(
                "missing credentials: use HTTP Basic with your access key id and secret "
                "(curl -u KEY_ID:SECRET; `pocketcloud env` prints the admin's)", code="AuthFailure")
        g.account = cloud().accounts.authenticate(auth.username, auth.password or "")
        return fn(*args, **kwargs)

    return wrapper


def body() -> dict:
    """The JSON object sent, {} when none. Only a JSON content type is read: a browser form
    (which any web page can post across origins) is refused before its body is read. The
    route's size limit (api/limits.py) applies while reading."""
    has_body = (request.content_length or 0) > 0 or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if has_body and not request.is_json:
        raise UnsupportedMediaType(f"send JSON with Content-Type: application/json (got "
                                   f"{request.mimetype or 'no content type'!r}); curl: --json '{{...}}'")
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise InvalidParameter("the request body must be a JSON object", code="MalformedJSON")
    return data


def _only(data: dict, allowed: set[str]) -> dict:
    unknown = set(data) - allowed
    if unknown:
        raise InvalidParameter(f"unknown field(s): {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
    return data


# -- service ------------------------------------------------------------------------
@bp.get("/health")
def health():
    return jsonify(status="ok")


@bp.get("/info")
@authenticated
def info():
    return jsonify({**cloud().info(), "console_url": cloud().config.console_url})


@bp.get("/instance-types")
@authenticated
def instance_types():
    return jsonify(instance_types=cloud().instance_types())


# -- images ---------------------------------------------------------------------------
@bp.get("/images")
@authenticated
def list_images():
    return jsonify(images=cloud().list_images())


@bp.post("/images")
@authenticated
def register_image():
    data = _only(body(), {"name", "source"})
    if not g.account.is_admin:
        raise Forbidden("only an admin can register images")
    cloud().images.register_docker(data.get("name"), data.get("source"))
    return jsonify(next(i for i in cloud().list_images() if i["name"] == data["name"])), 201


@bp.delete("/images/<name>")
@authenticated
def unregister_image(name: str):
    if not g.account.is_admin:
        raise Forbidden("only an admin can remove images")
    cloud().images.unregister(name)
    return "", 204


# -- instances ------------------------------------------------------------------------
RUN_FIELDS = {"name", "kind", "image", "type", "ports", "user_data", "tags", "key_name", "block_devices"}


@bp.post("/instances")
@authenticated
def run_instance():
    data = _only(body(), RUN_FIELDS)
    if "image" not in data:
        raise InvalidParameter("field 'image' is required (see GET /api/v1/images)", code="MissingParameter")
    inst = cloud().run_instance(g.account, **data)
    return jsonify(inst.to_dict()), 201


@bp.get("/instances")
@authenticated
def describe_instances():
    tags = {}
    for t in request.args.getlist("tag"):
        k, sep, v = t.partition("=")
        tags[k] = v if sep else None
    rows = cloud().describe_instances(
        g.account, state=request.args.get("state"), kind=request.args.get("kind"), tags=tags,
        all_accounts=request.args.get("all") in ("1", "true"))
    return jsonify(instances=[i.to_dict() for i in rows])


@bp.get("/instances/<instance_id>")
@authenticated
def describe_instance(instance_id: str):
    return jsonify(cloud().get_instance(g.account, instance_id).to_dict())


@bp.delete("/instances/<instance_id>")
@authenticated
def terminate_instance(instance_id: str):
    inst, prev = cloud().terminate_instance(g.account, instance_id)
    return jsonify({**inst.to_dict(), "previous_state": prev})


@bp.post("/instances/<instance_id>/<action>")
@authenticated
def instance_action(instance_id: str, action: str):
    handlers = {"start": cloud().start_instance, "stop": cloud().stop_instance, "reboot": cloud().reboot_instance}
    if action == "exec":
        return exec_command(instance_id)
    if action not in handlers:
        raise InvalidParameter(f"unknown action {action!r}: use start, stop, reboot or exec", code="InvalidAction")
    body()  # reject oversized or malformed bodies even where none is needed
    inst, prev = handlers[action](g.account, instance_id)
    return jsonify({**inst.to_dict(), "previous_state": prev})


@bp.get("/instances/<instance_id>/internals")
@authenticated
def instance_internals(instance_id: str):
    return jsonify(cloud().instance_internals(g.account, instance_id))


@bp.get("/instances/<instance_id>/console")
@authenticated
def console_output(instance_id: str):
    tail = request.args.get("tail", "1000")
    if not tail.isdecimal() or not 1 <= int(tail) <= 100000:
        raise InvalidParameter("tail must be a number of lines between 1 and 100000")
    text = cloud().console_output(g.account, instance_id, int(tail))
    if request.accept_mimetypes.best == "application/json" or request.args.get("format") == "json":
        return jsonify(instance_id=instance_id, output=text)
    return Response(text, mimetype="text/plain")


def exec_command(instance_id: str):
    data = _only(body(), {"command", "timeout"})
    if "command" not in data:
        raise InvalidParameter("field 'command' is required", code="MissingParameter")
    res = cloud().exec_command(g.account, instance_id, data["command"], data.get("timeout", 60))
    return jsonify(exit_code=res.exit_code, stdout=res.stdout, stderr=res.stderr, truncated=res.truncated,
                   timed_out=res.timed_out)


# -- accounts ---------------------------------------------------------------------------
@bp.post("/accounts")
@authenticated
def create_account():
    data = _only(body(), {"name", "role", "max_instances"})
    account, key = cloud().create_account(g.account, data.get("name"), data.get("role", "user"),
                                          data.get("max_instances", 20))
    return jsonify({**account.to_dict(), "access_key_id": key.key_id, "secret_access_key": key.secret}), 201


@bp.get("/accounts")
@authenticated
def list_accounts():
    return jsonify(accounts=[a.to_dict() for a in cloud().list_accounts(g.account)])


@bp.get("/accounts/me")
@authenticated
def whoami():
    return jsonify(g.account.to_dict())


# -- key pairs ---------------------------------------------------------------------------
@bp.post("/keys")
@authenticated
def create_key():
    """With `public_key`: import it. Without: create one and return its private key, once."""
    data = _only(body(), {"name", "public_key"})
    if "name" not in data:
        raise InvalidParameter("field 'name' is required", code="MissingParameter")
    kps = cloud().keypairs
    if "public_key" in data:
        return jsonify(kps.import_(g.account.id, data["name"], data["public_key"]).to_dict()), 201
    kp, private = kps.create(g.account.id, data["name"])
    return jsonify({**kp.to_dict(), "private_key": private}), 201


@bp.get("/keys")
@authenticated
def list_keys():
    return jsonify(keys=[k.to_dict() for k in cloud().keypairs.list(g.account.id)])


@bp.delete("/keys/<name>")
@authenticated
def delete_key(name: str):
    cloud().keypairs.get(g.account.id, name)
    cloud().keypairs.delete(g.account.id, name)
    return "", 204
