"""Console pages. Every action calls the same `Cloud` methods as the REST API, with the
signed-in Account as the caller, so ownership, quotas and validation are the API's own."""
from __future__ import annotations

import functools
import mimetypes
import os
import secrets
import time
from urllib.parse import quote

from flask import (Blueprint, Response, abort, current_app, flash, g, jsonify, redirect, render_template, request,
                   session, stream_with_context, url_for)

from emulator.errors import CloudError, Forbidden, InvalidParameter, NotFound, Unauthorized
from emulator.timefmt import human_utc

from ..limits import LOGIN_FORM, body_limit
from ..text import fmt_size
from . import guard
from .hints import next_step
from .layers import extras, layers

bp = Blueprint("web", __name__, url_prefix="/ui", template_folder="templates", static_folder="static",
               static_url_path="/static")

def cloud():
    return current_app.config["CLOUD"]


# -- session, auth, CSRF and headers (api/web/guard.py) -----------------------------------
_load_account = bp.before_request(guard.load_account)
_security_headers = bp.after_request(guard.security_headers)


@bp.app_context_processor
def _template_globals():
    return {"csrf_token": lambda: session.get("csrf", ""), "me": g.get("account"), "csp_nonce": g.get("csp_nonce", ""),
            "api_url": guard.api_base, "fmt_size": fmt_size, "fmt_time": human_utc}


def _safe_next(target: str | None, default: str) -> str:
    """Only ever redirect inside the console (no open redirect through ?next=)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return default


@bp.route("/login", methods=["GET", "POST"])
@body_limit(LOGIN_FORM)
def login():
    if request.method == "GET":
        if g.account is not None:
            return redirect(url_for("web.instances"))
        return render_template("login.html", next=request.args.get("next", ""))
    key_id = request.form.get("access_key_id", "").strip()
    secret = request.form.get("secret_access_key", "").strip()
    try:
        account = cloud().accounts.authenticate(key_id, secret)
    except (Unauthorized, NotFound, CloudError):
        time.sleep(0.2)  # a little friction for guessing
        return render_template("login.html", next=request.form.get("next", ""), key_id=key_id,
                               error="Wrong access key id or secret. `pocketcloud env` on the server host prints "
                                     "the admin's; an admin creates other accounts."), 401
    session.clear()  # no session fixation: a fresh session (and CSRF token) for the signed-in account
    session.permanent = True
    session.update(aid=account.id, kid=key_id, tag=guard.secret_tag(secret), csrf=secrets.token_urlsafe(32),
                   since=int(time.time()))
    return redirect(_safe_next(request.form.get("next"), url_for("web.instances")))


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("web.login"))


# -- errors ------------------------------------------------------------------------------
def error_page(status: int, message: str, code: str = ""):
    """The console's error page; api/errors.py renders every exception raised under /ui with it."""
    return render_template("error.html", status=status, message=message, code=code,
                           next_step=next_step(code, message)), status


def action(fn):
    """A POST handler: a CloudError becomes a flash message and a redirect back, not an error page."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotFound:
            raise
        except CloudError as e:
            step = next_step(e.code, str(e))
            flash(f"{e} [{e.code}]" + (f" — {step}" if step else ""), "error")
            return redirect(_safe_next(request.form.get("next"), url_for("web.instances")))

    return wrapper


# -- helpers -------------------------------------------------------------------------------
def storage():
    """The object storage service (buckets, sharing, usage)."""
    return current_app.config["CLOUD"].storage


def _launch_options():
    images = cloud().list_images()
    return {"images": [i for i in images if i.get("kind_names")], "types": cloud().instance_types(),
            "keys": cloud().keypairs.list(g.account.id)}


# -- instances -----------------------------------------------------------------------------
@bp.get("/")
def index():
    return redirect(url_for("web.instances"))


@bp.get("/instances")
def instances():
    started = time.perf_counter()
    show_all = request.args.get("all") == "1" and g.account.is_admin
    rows = cloud().describe_instances(g.account, all_accounts=show_all)
    rows.sort(key=lambda i: (i.state == "terminated", -i.created_at))
    return render_template("instances.html", instances=[i.to_dict() for i in rows], show_all=show_all,
                           offer_tour=not rows and not show_all,
                           busy=any(i.state in ("pending", "stopping", "shutting-down") for i in rows),
                           render_ms=lambda: round((time.perf_counter() - started) * 1000, 1),
                           **_launch_options())


@bp.get("/instances.json")
def instances_json():
    """Live states for the list's poll (tiny vanilla JS; the page also works without it)."""
    rows = cloud().describe_instances(g.account)
    return jsonify(instances=[{"id": i.id, "state": i.state, "state_reason": i.state_reason} for i in rows])


@bp.post("/instances")
@action
def launch():
    f = request.form
    ports = []
    for part in f.get("ports", "").replace(",", " ").split():
        host, _, guest = part.rpartition(":")
        if not guest.isdecimal() or (host and not host.isdecimal()):
            raise InvalidParameter(f"port {part!r}: use GUEST or HOST:GUEST, e.g. 80 or 8080:80")
        ports.append({"guest": int(guest), **({"host": int(host)} if host else {})})
    kwargs = {"image": f.get("image", ""), "kind": f.get("kind", "container"), "type": f.get("type") or None,
              "ports": ports}
    if f.get("name", "").strip():
        kwargs["name"] = f["name"].strip()
    if f.get("user_data", "").strip():
        kwargs["user_data"] = f["user_data"].replace("\r\n", "\n")
    if f.get("key_name"):
        kwargs["key_name"] = f["key_name"]
    inst = cloud().run_instance(g.account, **kwargs)
    flash(f"Launched {inst.id} ({inst.state}).", "ok")
    return redirect(url_for("web.instance", instance_id=inst.id))


@bp.get("/instances/<instance_id>")
def instance(instance_id: str):
    inst = cloud().get_instance(g.account, instance_id)
    try:
        console = cloud().console_output(g.account, instance_id, 200)
    except CloudError as e:
        console = f"(console not available: {e})"
    return render_template("instance.html", inst=inst.to_dict(), user_data=inst.user_data, console=console,
                           exec_result=None, command="")


@bp.get("/instances/<instance_id>/state.json")
def instance_state(instance_id: str):
    inst = cloud().get_instance(g.account, instance_id)
    d = inst.to_dict()
    return jsonify(id=inst.id, state=inst.state, state_reason=inst.state_reason, boot=d.get("boot"),
                   since_created=round(time.time() - inst.created_at, 1))


@bp.post("/instances/<instance_id>/exec")
def instance_exec(instance_id: str):
    inst = cloud().get_instance(g.account, instance_id)
    command = request.form.get("command", "").strip()
    try:
        result = cloud().exec_command(g.account, instance_id, ["sh", "-c", command], 60)
        exec_result = {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
    except NotFound:
        raise
    except CloudError as e:
        step = next_step(e.code, str(e))
        exec_result = {"exit_code": None, "stdout": "", "stderr": f"{e} [{e.code}]" + (f"\n{step}" if step else "")}
    console = cloud().console_output(g.account, instance_id, 200)
    return render_template("instance.html", inst=inst.to_dict(), user_data=inst.user_data, console=console,
                           exec_result=exec_result, command=command)


@bp.post("/instances/<instance_id>/<verb>")
@action
def instance_action(instance_id: str, verb: str):
    handlers = {"start": cloud().start_instance, "stop": cloud().stop_instance, "reboot": cloud().reboot_instance,
                "terminate": cloud().terminate_instance}
    if verb not in handlers:
        abort(404)
    inst, prev = handlers[verb](g.account, instance_id)
    flash(f"{verb.capitalize()}: {inst.id} {prev} → {inst.state}.", "ok")
    return redirect(_safe_next(request.form.get("next"), url_for("web.instance", instance_id=inst.id)))


@bp.get("/instances/<instance_id>/internals")
def internals(instance_id: str):
    inst = cloud().get_instance(g.account, instance_id)
    try:
        data = cloud().instance_internals(g.account, instance_id)
    except NotFound:
        raise
    except CloudError as e:
        return render_template("internals.html", inst=inst.to_dict(), data=None, error=f"{e}", layers=[], extras=[],
                               next_step=next_step(e.code, str(e)))
    stack = layers(data)
    for layer in stack:  # the console is the API layer here: say which process serves it
        if layer["key"] == "api":
            layer["facts"].append(("server PID", os.getpid()))
    return render_template("internals.html", inst=inst.to_dict(), data=data, error=None, layers=stack,
                           extras=extras(data))


# -- images --------------------------------------------------------------------------------
@bp.get("/images")
def images():
    return render_template("images.html", images=cloud().list_images())


# -- keys ----------------------------------------------------------------------------------
@bp.get("/keys")
def keys():
    return render_template("keys.html", keys=[k.to_dict() for k in cloud().keypairs.list(g.account.id)],
                           created=None)


@bp.post("/keys")
@action
def key_create():
    name = request.form.get("name", "").strip()
    public = request.form.get("public_key", "").strip()
    kps = cloud().keypairs
    if public:
        kp = kps.import_(g.account.id, name, public)
        flash(f"Imported key pair {kp.name}.", "ok")
        return redirect(url_for("web.keys"))
    kp, private = kps.create(g.account.id, name)
    # The private key is shown once, in this response only; the server does not keep it.
    return render_template("keys.html", keys=[k.to_dict() for k in kps.list(g.account.id)],
                           created={**kp.to_dict(), "private_key": private})


@bp.post("/keys/<name>/delete")
@action
def key_delete(name: str):
    kps = cloud().keypairs
    kps.get(g.account.id, name)
    kps.delete(g.account.id, name)
    flash(f"Deleted key pair {name}.", "ok")
    return redirect(url_for("web.keys"))


# -- buckets -------------------------------------------------------------------------------
@bp.get("/buckets")
def buckets():
    st = storage()
    rows = []
    for b in st.list_buckets(g.account):
        d = b.to_dict()
        d["level"] = b.level_of(g.account)
        try:
            d["usage"] = st.usage(b.name)
        except CloudError:
            d["usage"] = None
        rows.append(d)
    return render_template("buckets.html", buckets=rows)


@bp.post("/buckets")
@action
def bucket_create():
    st = storage()
    name = request.form.get("name", "").strip()
    b = st.create_bucket(g.account, name, "public-read" if request.form.get("public") else "private")
    flash(f"Created bucket {b.name}.", "ok")
    return redirect(url_for("web.bucket", name=b.name))


@bp.get("/buckets/<name>")
def bucket(name: str):
    st = storage()
    try:
        b = st.authorize(g.account, name, "list")
    except Forbidden:
        raise NotFound(f"bucket {name} does not exist", code="NoSuchBucket") from None
    prefix = request.args.get("prefix", "")
    listing = st.list_objects(g.account, name, prefix=prefix, delimiter="/", max_keys=1000,
                              continuation_token=request.args.get("token") or None)
    return render_template("bucket.html", bucket=b.to_dict(), level=b.level_of(g.account), prefix=prefix,
                           listing=listing, usage=st.usage(name), presigned=None)


@bp.post("/buckets/<name>/upload")
@body_limit(lambda config: config.max_console_upload)
@action
def bucket_upload(name: str):
    st = storage()
    f = request.files.get("file")
    if f is None or not f.filename:
        raise InvalidParameter("choose a file to upload")
    key = (request.form.get("prefix", "") + (request.form.get("key", "").strip() or os.path.basename(f.filename)))
    f.stream.seek(0, os.SEEK_END)
    length = f.stream.tell()
    f.stream.seek(0)
    ctype = f.mimetype or mimetypes.guess_type(key)[0] or "application/octet-stream"
    reply = st.put_object(g.account, name, key, iter(lambda: f.stream.read(1 << 20), b""), length,
                          {"Content-Type": ctype})
    if reply.status != 200:
        raise CloudError(f"the storage engine refused the upload (HTTP {reply.status})", code="UploadFailed")
    flash(f"Uploaded {key} ({fmt_size(length)}).", "ok")
    return redirect(url_for("web.bucket", name=name, prefix=request.form.get("prefix", "")))


@bp.get("/buckets/<name>/download")
def bucket_download(name: str):
    st = storage()
    key = request.args.get("key", "")
    try:
        resp = st.get_object(g.account, name, key)
    except Forbidden:
        raise NotFound(f"bucket {name} does not exist", code="NoSuchBucket") from None
    if resp.status != 200:
        resp.close()
        raise NotFound(f"no object {key!r} in {name}", code="NoSuchKey")
    headers = {k.lower(): v for k, v in resp.headers}
    filename = key.rsplit("/", 1)[-1] or "download"
    out = Response(stream_with_context(resp.iter()), mimetype="application/octet-stream")
    if headers.get("content-length"):
        out.headers["Content-Length"] = headers["content-length"]
    out.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
    return out


@bp.post("/buckets/<name>/delete-object")
@action
def bucket_delete_object(name: str):
    st = storage()
    key = request.form.get("key", "")
    st.delete_object(g.account, name, key)
    flash(f"Deleted {key}.", "ok")
    return redirect(url_for("web.bucket", name=name, prefix=request.form.get("prefix", "")))


@bp.post("/buckets/<name>/share")
@action
def bucket_share(name: str):
    st = storage()
    f = request.form
    if f.get("access") in ("private", "public-read"):
        st.set_access(g.account, name, f["access"])
        flash(f"{name} is now {f['access']}.", "ok")
    if f.get("grantee", "").strip():
        level = f.get("level") or None
        st.grant(g.account, name, f["grantee"].strip(), None if level == "none" else level)
        flash(f"Shared {name} with {f['grantee'].strip()}: {level}.", "ok")
    return redirect(url_for("web.bucket", name=name))


@bp.post("/buckets/<name>/presign")
@action
def bucket_presign(name: str):
    st = storage()
    key = request.form.get("key", "")
    raw = (request.form.get("expires") or "3600").strip()
    if not raw.isdecimal():
        raise InvalidParameter("expires must be a number of seconds (1-604800)")
    expires = int(raw)
    _, secret = cloud().accounts.secret_for(session["kid"])
    url = st.presign(g.account, session["kid"], secret, name, key, expires=expires,
                     endpoint=guard.api_base())
    b = st.get_bucket(name)
    listing = st.list_objects(g.account, name, prefix=request.form.get("prefix", ""), delimiter="/")
    return render_template("bucket.html", bucket=b.to_dict(), level=b.level_of(g.account),
                           prefix=request.form.get("prefix", ""), listing=listing, usage=st.usage(name),
                           presigned={"key": key, "url": url, "expires": expires})


@bp.post("/buckets/<name>/delete")
@action
def bucket_delete(name: str):
    st = storage()
    st.delete_bucket(g.account, name, force=bool(request.form.get("force")))
    flash(f"Deleted bucket {name}.", "ok")
    return redirect(url_for("web.buckets"))


# -- accounts (admin) ----------------------------------------------------------------------
def _admin():
    if not g.account.is_admin:
        raise NotFound("no such page", code="NotFound")  # a user does not learn the admin pages exist


def _accounts_rows() -> list[dict]:
    counts: dict[str, int] = {}
    for inst in cloud().describe_instances(g.account, all_accounts=True):
        if inst.state != "terminated":
            counts[inst.owner] = counts.get(inst.owner, 0) + 1
    st = storage()
    rows = []
    for a in cloud().list_accounts(g.account):
        d = {**a.to_dict(), "instances": counts.get(a.id, 0)}
        try:
            d["storage_usage"] = st.account_usage(a.id)
        except CloudError:
            pass
        rows.append(d)
    return rows


@bp.get("/accounts")
def accounts():
    _admin()
    return render_template("accounts.html", accounts=_accounts_rows(), created=None)


@bp.post("/accounts")
@action
def account_create():
    _admin()
    f = request.form
    raw = (f.get("max_instances") or "20").strip()
    max_instances = int(raw) if raw.isdecimal() else -1
    account, key = cloud().create_account(g.account, f.get("name", "").strip(), f.get("role", "user"), max_instances)
    # The secret is shown once, in this response only.
    return render_template("accounts.html", accounts=_accounts_rows(), created={
        **account.to_dict(), "access_key_id": key.key_id, "secret_access_key": key.secret})


@bp.post("/accounts/<account_id>/quota")
@action
def account_quota(account_id: str):
    _admin()
    f = request.form
    mi = f.get("max_instances", "").strip()
    sq = f.get("storage_quota_mib", "").strip()
    if mi and (not mi.isdecimal() or not 0 <= int(mi) <= 1000):
        raise InvalidParameter("max instances must be a whole number between 0 and 1000")
    if sq and not sq.isdecimal():
        raise InvalidParameter("storage quota must be a whole number of MiB (empty for unlimited)")
    a = cloud().accounts.set_limits(account_id, max_instances=int(mi) if mi else None,
                                    storage_quota=int(sq) * 1024 * 1024 if sq else None)
    flash(f"Quotas of {a.name}: {a.max_instances} instances, "
          f"storage {fmt_size(a.storage_quota) if a.storage_quota is not None else 'unlimited'}.", "ok")
    return redirect(url_for("web.accounts"))


# -- system --------------------------------------------------------------------------------
@bp.get("/system")
def system():
    info = cloud().info()
    hosts = None
    if (info.get("storage") or {}).get("engine") == "ceph" and g.account.is_admin:
        try:  # the cluster's machines and their OSDs: an admin's view, read live
            hosts = cloud().storage.engine_cluster(g.account)["hosts"]
        except CloudError:
            hosts = None
    return render_template("system.html", info=info, hosts=hosts)


@bp.get("/<path:unknown>")
def unknown_page(unknown: str):
    return error_page(404, f"There is no console page at /ui/{unknown}.")
