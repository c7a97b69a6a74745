"""The OpenAPI 3 document of the REST API, served at GET /api/v1/openapi.json.

Written here, next to the routes, and kept true by tests/unit/test_openapi.py (every Flask
route under /api/v1 is documented and every documented operation exists) and by the
Schemathesis fuzz test against a real server (every answer is a documented status; every
error is the JSON error shape; never a 500).

Each operation lists the statuses it really answers: the success, 400 for bad input, 401
without valid credentials, 403 when the caller may not, 404 for a missing or foreign
resource, 409 for a state conflict, 413/415 for bodies (api/limits.py; JSON only), 502/503
when an engine fails or is down; and 414, which gunicorn sends (as HTML) for a request line
over 4094 bytes before pocketcloud sees the request.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

JSON = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
OBJ = {"type": "object"}
STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
REASONS = {200: "OK", 201: "Created", 204: "No content", 206: "Partial content", 400: "Bad input",
           401: "No valid credentials", 403: "Not allowed", 404: "Not found", 409: "Conflict with the current state",
           411: "Content-Length required", 413: "Body too large", 415: "Not JSON", 416: "Range not satisfiable",
           429: "Too many at once; try again when one has finished", 502: "An engine failed",
           503: "An engine is unavailable"}

AUTHED = (400, 401, 403, 404)
BODY = (413, 415)
ENGINE = (502, 503)


# RunInstances' BlockDeviceMappings: the root device ("/dev/vda" for a VM, "/" for a container)
# with a larger size, or volumes made with the instance (deleted with it unless told otherwise).
BLOCK_DEVICES = {"type": "array", "maxItems": 26, "items": {"type": "object", "additionalProperties": False,
                 "required": ["device"], "properties": {
                     "device": STR, "size_gib": INT, "snapshot_id": STR, "volume_type": {"type": "string",
                                                                                          "enum": ["gp3"]},
                     "delete_on_termination": BOOL, "iops": INT, "throughput": INT, "encrypted": BOOL,
                     "no_device": BOOL}}}


def _body(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return {"required": bool(required), "content": {JSON: {"schema": schema}}}


def _param(name: str, where: str = "query", schema: dict | None = None, required: bool = False,
           description: str = "") -> dict:
    out = {"name": name, "in": where, "required": where == "path" or required, "schema": schema or STR}
    if description:
        out["description"] = description
    return out


def op(summary: str, ok: int = 200, *errors: int, params: tuple = (), body: dict | None = None,
       ok_content: dict | None = None, public: bool = False, tag: str = "") -> dict:
    """One operation: its success answer and every error status it documents."""
    responses: dict[str, Any] = {str(ok): {"description": REASONS[ok]}}
    if ok != 204:
        responses[str(ok)]["content"] = ok_content or {JSON: {"schema": OBJ}}
    for status in sorted(set(errors) | (set(BODY) if body else set())):
        content = {JSON: {"schema": ERROR}} if status >= 400 else responses[str(ok)]["content"]
        responses[str(status)] = {"description": REASONS[status], "content": content}
    # gunicorn answers this one itself, before any of pocketcloud runs: its own HTML page
    responses["414"] = {"description": "Request line over 4094 bytes, refused by the HTTP server",
                        "content": {"text/html": {"schema": STR}}}
    out: dict[str, Any] = {"summary": summary, "responses": responses}
    if tag:
        out["tags"] = [tag]
    if params:
        out["parameters"] = list(params)
    if body:
        out["requestBody"] = body
    if public:
        out["security"] = []
    return out


INSTANCE_ID = _param("instance_id", "path")
BUCKET = _param("name", "path")
KEY = _param("key", "path", description="the object key (may contain /)")
ACCOUNT_Q = _param("account", description="another account's name or id (admins)")
PORTS = {"type": "array", "maxItems": 64, "items": {"type": "object", "properties": {"guest": INT, "host": INT},
                                                    "required": ["guest"], "additionalProperties": False}}

PATHS: dict[str, dict[str, dict]] = {
    "/api/v1/health": {"get": op("Liveness, no credentials", 200, public=True, tag="service")},
    "/api/v1/openapi.json": {"get": op("This document", 200, public=True, tag="service")},
    "/api/v1/info": {"get": op("Engines, hypervisor, storage engine, console URL", 200, *AUTHED, tag="service")},
    "/api/v1/instance-types": {"get": op("EC2 instance types and their limits", 200, *AUTHED, tag="service")},
    "/api/v1/images": {
        "get": op("The image catalog", 200, *AUTHED, tag="images"),
        "post": op("Register a Docker image (admin)", 201, *AUTHED, 409, *ENGINE, tag="images",
                   body=_body({"name": STR, "source": STR}, ("name", "source"))),
    },
    "/api/v1/images/{name}": {
        "delete": op("Remove an image (admin)", 204, *AUTHED, 409, *ENGINE, params=(_param("name", "path"),),
                     tag="images")},
    "/api/v1/instances": {
        "get": op("Your instances", 200, *AUTHED, tag="instances", params=(
            _param("state"), _param("kind"), _param("tag", schema={"type": "array", "items": STR},
                                                    description="KEY=VALUE or KEY, repeated"),
            _param("all", description="1 or true: every account's (admin)"))),
        "post": op("Launch an instance: a container answers running (synchronous); a VM answers pending at "
                   "once and boots in the server (poll GET; boot.phases shows its progress)",
                   201, *AUTHED, 409, *ENGINE, tag="instances", body=_body({
            "name": STR, "kind": {"type": "string", "enum": ["container", "vm"]}, "image": STR, "type": STR,
            "ports": PORTS, "user_data": {"type": "string", "maxLength": 16384},
            "tags": {"type": "object", "additionalProperties": STR}, "key_name": STR,
            "block_devices": BLOCK_DEVICES}, ("image",))),
    },
    "/api/v1/instances/{instance_id}": {
        "get": op("One instance", 200, *AUTHED, params=(INSTANCE_ID,), tag="instances"),
        "delete": op("Terminate", 200, *AUTHED, 409, *ENGINE, params=(INSTANCE_ID,), tag="instances"),
    },
    "/api/v1/instances/{instance_id}/{action}": {
        "post": op("start, stop, reboot, or exec ({command, timeout}; output capped per stream, then "
                   "truncated: true; killed at the timeout, then timed_out: true and exit code 124; "
                   "429 RequestLimitExceeded past the account's concurrent execs)", 200, *AUTHED, 409, 429, *ENGINE,
                   tag="instances", params=(INSTANCE_ID, _param("action", "path", {
                       "type": "string", "enum": ["start", "stop", "reboot", "exec"]})),
                   body={"required": False, "content": {JSON: {"schema": {
                       "type": "object", "additionalProperties": False, "properties": {
                           "command": {"oneOf": [STR, {"type": "array", "items": STR}]}, "timeout": INT}}}}})},
    "/api/v1/instances/{instance_id}/console": {
        "get": op("The boot/console log (text, or JSON with format=json)", 200, *AUTHED, *ENGINE, tag="instances",
                  params=(INSTANCE_ID, _param("tail", schema={"type": "string", "pattern": "^[0-9]{1,6}$"}),
                          _param("format", schema={"type": "string", "enum": ["json", "text"]})),
                  ok_content={"text/plain": {"schema": STR}, JSON: {"schema": OBJ}})},
    "/api/v1/instances/{instance_id}/internals": {
        "get": op("What runs behind the instance, read live", 200, *AUTHED, *ENGINE, params=(INSTANCE_ID,),
                  tag="instances")},
    "/api/v1/keys": {
        "get": op("Your SSH key pairs", 200, *AUTHED, tag="key pairs"),
        "post": op("Create (or, with public_key, import) a key pair", 201, *AUTHED, 409, tag="key pairs",
                   body=_body({"name": STR, "public_key": STR}, ("name",))),
    },
    "/api/v1/keys/{name}": {"delete": op("Delete a key pair", 204, *AUTHED, params=(_param("name", "path"),),
                                         tag="key pairs")},
    "/api/v1/accounts": {
        "get": op("Accounts (a user sees itself)", 200, *AUTHED, tag="accounts"),
        "post": op("Create an account and its first key (admin)", 201, *AUTHED, 409, tag="accounts",
                   body=_body({"name": STR, "role": {"type": "string", "enum": ["admin", "user"]},
                               "max_instances": INT})),
    },
    "/api/v1/accounts/me": {"get": op("Who you are", 200, *AUTHED, tag="accounts")},
    "/api/v1/accounts/{name}": {
        "get": op("One account with usage (admin, or itself)", 200, *AUTHED, params=(_param("name", "path"),),
                  tag="accounts"),
        "patch": op("Quotas, disable/enable (admin)", 200, *AUTHED, 409, params=(_param("name", "path"),),
                    tag="accounts", body=_body({"max_instances": INT,
                                                "storage_quota": {"type": "integer", "nullable": True},
                                                "disabled": BOOL})),
    },
    "/api/v1/access-keys": {
        "get": op("Access keys (never their secrets)", 200, *AUTHED, params=(ACCOUNT_Q,), tag="access keys"),
        "post": op("A new access key; the secret is in this answer only (two at most)", 201, *AUTHED,
                   tag="access keys", body=_body({"account": STR})),
    },
    "/api/v1/access-keys/{key_id}": {
        "patch": op("Active or Inactive", 200, *AUTHED, params=(_param("key_id", "path"),), tag="access keys",
                    body=_body({"status": {"type": "string", "enum": ["Active", "Inactive"]}}, ("status",))),
        "delete": op("Delete an access key", 204, *AUTHED, params=(_param("key_id", "path"),), tag="access keys"),
    },
    "/api/v1/buckets": {
        "get": op("Your buckets and those shared with you", 200, *AUTHED, *ENGINE, tag="buckets"),
        "post": op("Create a bucket", 201, *AUTHED, 409, *ENGINE, tag="buckets", body=_body(
            {"name": STR, "access": {"type": "string", "enum": ["private", "public-read"]}}, ("name",))),
    },
    "/api/v1/buckets/{name}": {
        "get": op("A bucket: access, grants, usage", 200, *AUTHED, *ENGINE, params=(BUCKET,), tag="buckets"),
        "delete": op("Delete a bucket (force=true: with its objects)", 204, *AUTHED, 409, *ENGINE, tag="buckets",
                     params=(BUCKET, _param("force"))),
    },
    "/api/v1/buckets/{name}/internals": {
        "get": op("Where the bucket lives in the engine", 200, *AUTHED, *ENGINE, params=(BUCKET,), tag="buckets")},
    "/api/v1/buckets/{name}/objects": {
        "get": op("List objects", 200, *AUTHED, *ENGINE, tag="buckets", params=(
            BUCKET, _param("prefix"), _param("delimiter"), _param("limit"), _param("token")))},
    "/api/v1/buckets/{name}/objects/{key}": {
        "put": op("Upload an object (the body, with a Content-Length)", 201, *AUTHED, 411, 413, *ENGINE,
                  tag="buckets", params=(BUCKET, KEY), body={"required": True, "content": {
                      "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}),
        "get": op("Download an object (Range supported)", 200, *AUTHED, 206, 416, *ENGINE, tag="buckets",
                  params=(BUCKET, KEY), ok_content={"application/octet-stream": {"schema": {
                      "type": "string", "format": "binary"}}}),
        "delete": op("Delete an object", 204, *AUTHED, *ENGINE, params=(BUCKET, KEY), tag="buckets"),
    },
    "/api/v1/buckets/{name}/presign": {
        "post": op("A presigned URL (7 days at most)", 200, *AUTHED, *ENGINE, params=(BUCKET,), tag="buckets",
                   body=_body({"key": STR, "expires": {"type": "integer", "minimum": 1, "maximum": 604800},
                               "method": {"type": "string", "enum": ["GET", "PUT", "HEAD", "DELETE"]}}, ("key",)))},
    "/api/v1/buckets/{name}/access": {
        "put": op("private or public-read", 200, *AUTHED, *ENGINE, params=(BUCKET,), tag="buckets", body=_body(
            {"access": {"type": "string", "enum": ["private", "public-read"]}}, ("access",)))},
    "/api/v1/buckets/{name}/shares/{account}": {
        "put": op("Share with an account", 200, *AUTHED, *ENGINE, tag="buckets",
                  params=(BUCKET, _param("account", "path")),
                  body=_body({"level": {"type": "string", "enum": ["read", "read-write"]}})),
        "delete": op("Stop sharing", 200, *AUTHED, *ENGINE, params=(BUCKET, _param("account", "path")),
                     tag="buckets"),
    },
    "/api/v1/storage": {"get": op("Your storage usage and quota", 200, *AUTHED, *ENGINE, tag="buckets")},
    "/api/v1/billing": {
        "get": op("Cost and usage", 200, *AUTHED, tag="billing", params=(
            ACCOUNT_Q, _param("start"), _param("end"), _param("granularity"), _param("group_by")))},
    "/api/v1/billing/forecast": {
        "get": op("Forecast", 200, *AUTHED, tag="billing", params=(
            ACCOUNT_Q, _param("start"), _param("end"), _param("granularity")))},
    "/api/v1/billing/prices": {"get": op("The price list in use", 200, *AUTHED, tag="billing")},
    "/api/v1/billing/settings": {
        "get": op("Billing clock settings", 200, *AUTHED, tag="billing"),
        "put": op("Change the time scale (admin)", 200, *AUTHED, tag="billing",
                  body=_body({"time_scale": {"type": "number"}}, ("time_scale",))),
    },
    "/api/v1/billing/alerts": {
        "get": op("Budget alerts", 200, *AUTHED, tag="billing", params=(ACCOUNT_Q, _param("since")))},
    "/api/v1/billing/budgets": {
        "get": op("Budgets", 200, *AUTHED, params=(ACCOUNT_Q,), tag="billing"),
        "post": op("Create a budget", 201, *AUTHED, 409, tag="billing", params=(ACCOUNT_Q,), body=_body({
            "name": STR, "limit": {"type": "number"}, "time_unit": STR, "notifications": {"type": "array"},
            "stop_instances_at": {"type": "number"}, "subscribers": {"type": "array"}}, ("name", "limit"))),
    },
    "/api/v1/billing/budgets/{name}": {
        "delete": op("Delete a budget", 204, *AUTHED, params=(ACCOUNT_Q, _param("name", "path")), tag="billing")},
    # Auto Scaling groups and launch templates (pets vs cattle): api/rest_groups.py
    "/api/v1/groups": {
        "get": op("Auto Scaling groups", 200, *AUTHED, tag="groups"),
        "post": op("Create a group kept at its desired capacity", 201, *AUTHED, 409, *ENGINE, tag="groups",
                   body=_body({"name": STR, "min": INT, "max": INT, "desired": INT, "grace": INT,
                               "zones": {"type": "array", "items": STR},
                               "launch_template": {"type": "object", "properties": {
                                   "name": STR, "id": STR, "version": STR}},
                               "tags": {"type": "object", "additionalProperties": STR}},
                              ("name", "min", "max", "launch_template"))),
    },
    "/api/v1/groups/{name}": {
        "get": op("A group, its members and recent activity", 200, *AUTHED, tag="groups",
                  params=(_param("name", "path"),)),
        "patch": op("Change min, max or desired", 200, *AUTHED, 409, *ENGINE, tag="groups",
                    params=(_param("name", "path"),),
                    body=_body({"min": INT, "max": INT, "desired": INT})),
        "delete": op("Delete a group (force: its members too); 200 while members still go", 200, 204, *AUTHED, 409, *ENGINE, tag="groups",
                     params=(_param("name", "path"), _param("force"))),
    },
    "/api/v1/groups/{name}/activities": {
        "get": op("A group's activity history", 200, *AUTHED, tag="groups",
                  params=(_param("name", "path"), _param("limit")))},
    "/api/v1/instances/{instance_id}/group": {
        "get": op("Pet or cattle: the group an instance belongs to, and what happens if it dies", 200,
                  *AUTHED, tag="groups", params=(INSTANCE_ID,))},
    "/api/v1/launch-templates": {
        "get": op("Launch templates", 200, *AUTHED, tag="groups"),
        "post": op("Create a launch template", 201, *AUTHED, 409, tag="groups", body=_body({
            "name": STR, "image": STR, "kind": STR, "type": STR, "user_data": STR, "key_name": STR,
            "security_groups": {"type": "array", "items": STR}, "description": STR,
            "tags": {"type": "object", "additionalProperties": STR}}, ("name", "image"))),
    },
    "/api/v1/launch-templates/{name}": {
        "delete": op("Delete a launch template", 204, *AUTHED, 409, tag="groups",
                     params=(_param("name", "path"),))},
    # VPCs and subnets (api/rest_vpcs.py): pocketcloud's IPAM, real bridges with VPC networking on
    "/api/v1/vpcs": {
        "get": op("Your VPCs", 200, *AUTHED, tag="networks"),
        "post": op("Create a VPC (its block distinct on the host)", 201, *AUTHED, *ENGINE, tag="networks",
                   body=_body({"cidr": STR}, ("cidr",))),
    },
    "/api/v1/vpcs/{vpc_id}": {
        "delete": op("Delete a VPC without subnets", 204, *AUTHED, 409, *ENGINE, tag="networks",
                     params=(_param("vpc_id", "path"),))},
    "/api/v1/subnets": {
        "get": op("Your subnets", 200, *AUTHED, tag="networks", params=(_param("vpc"),)),
        "post": op("Create a subnet in a VPC (a bridge with VPC networking on)", 201, *AUTHED, *ENGINE,
                   tag="networks", body=_body({"vpc": STR, "cidr": STR, "zone": STR}, ("vpc", "cidr"))),
    },
    "/api/v1/subnets/{subnet_id}": {
        "delete": op("Delete a subnet without instances", 204, *AUTHED, 409, *ENGINE, tag="networks",
                     params=(_param("subnet_id", "path"),))},
    # the Ceph cluster behind S3 (admins; api/rest_storage.py)
    "/api/v1/storage/cluster": {
        "get": op("The storage cluster: health and why, OSDs, placement groups, daemons", 200, *AUTHED, *ENGINE,
                  tag="storage")},
    "/api/v1/storage/hosts": {
        "get": op("The cluster's machines and their OSDs", 200, *AUTHED, *ENGINE, tag="storage")},
    "/api/v1/storage/daemons/{name}/kill": {
        "post": op("SIGKILL one daemon of this host, held down until released", 200, *AUTHED, 409, *ENGINE,
                   tag="storage", params=(_param("name", "path"),), body=_body({"hold": BOOL}))},
    "/api/v1/storage/daemons/{name}/release": {
        "post": op("Let the supervisor restart a held daemon", 200, *AUTHED, 409, *ENGINE, tag="storage",
                   params=(_param("name", "path"),))},
    # volumes (block storage): api/rest_volumes.py
    "/api/v1/volumes": {
        "get": op("The caller's volumes, root volumes of live instances included", 200, *AUTHED, tag="volumes"),
        "post": op("Create a gp3 volume (a qcow2 file in the cloud's storage pool)", 201, *AUTHED, *ENGINE,
                   tag="volumes", body=_body({"size": INT, "zone": STR, "type": STR, "iops": INT, "throughput": INT,
                                              "snapshot_id": STR,
                                              "tags": {"type": "object", "additionalProperties": STR}}))},
    "/api/v1/volumes/{volume_id}": {
        "get": op("A volume", 200, *AUTHED, tag="volumes", params=(_param("volume_id", "path"),)),
        "patch": op("Grow a volume, or set its gp3 IOPS and throughput", 200, *AUTHED, 409, *ENGINE, tag="volumes",
                    params=(_param("volume_id", "path"),),
                    body=_body({"size": INT, "iops": INT, "throughput": INT})),
        "delete": op("Delete an available volume and its file", 204, *AUTHED, 409, *ENGINE, tag="volumes",
                     params=(_param("volume_id", "path"),))},
    "/api/v1/volumes/{volume_id}/attach": {
        "post": op("Attach to an instance: a VM's hot-plugged disk, a container's /volumes/<device>", 200, *AUTHED,
                   409, *ENGINE, tag="volumes", params=(_param("volume_id", "path"),),
                   body=_body({"instance_id": STR, "device": STR}, ("instance_id",)))},
    "/api/v1/volumes/{volume_id}/detach": {
        "post": op("Detach from its instance", 200, *AUTHED, 409, *ENGINE, tag="volumes",
                   params=(_param("volume_id", "path"),))},
    "/api/v1/snapshots": {
        "get": op("The caller's snapshots", 200, *AUTHED, tag="volumes"),
        "post": op("Snapshot a volume (crash-consistent, even in use)", 201, *AUTHED, 409, *ENGINE, tag="volumes",
                   body=_body({"volume_id": STR, "description": STR,
                               "tags": {"type": "object", "additionalProperties": STR}}, ("volume_id",)))},
    "/api/v1/snapshots/{snapshot_id}": {
        "delete": op("Delete a snapshot", 204, *AUTHED, *ENGINE, tag="volumes",
                     params=(_param("snapshot_id", "path"),))},
    "/api/v1/volumes/{volume_id}/internals": {
        "get": op("A volume's file, qcow2 chain and attachment as the host has them", 200, *AUTHED, *ENGINE,
                  tag="volumes", params=(_param("volume_id", "path"),))},
    "/api/v1/billing/hygiene": {
        "get": op("Idle and forgotten resources", 200, *AUTHED, tag="billing", params=(
            ACCOUNT_Q, _param("idle_minutes"), _param("cpu_percent"), _param("untouched_days"),
            _param("snapshot_days")))},
}


def document() -> dict:
    from emulator import __version__

    return {
        "openapi": "3.0.3",
        "info": {"title": "pocketcloud REST API", "version": __version__,
                 "description": "JSON over HTTP Basic (access key id : secret). Errors are always "
                                "{\"error\": {\"code\", \"message\"}}. Bodies are JSON only (415 otherwise)."},
        "servers": [{"url": "/"}],
        "security": [{"basic": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": {"Error": {
                "type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string", "minLength": 1},
                                   "message": {"type": "string", "minLength": 1}}}}}},
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())
