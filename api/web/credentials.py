"""The console's credential pages: access keys (/ui/access-keys: create, deactivate, activate,
delete; an admin also for another account with ?account=NAME) and disabling or enabling an
account (admins, from the accounts page). Same rules as the REST API (api/rest_access_keys.py):
two keys per account, another account's key is a 404 to a user, the last admin stays enabled.

A session signed in with a key that is deactivated or deleted, or whose account is disabled,
ends at its next request: every page re-checks the key (views._load_account)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for

from emulator.errors import InvalidParameter, InvalidState

from ..rest_access_keys import key_of_caller, target_account
from .views import _admin, _load_account, _security_headers, action

bp = Blueprint("web_credentials", __name__, url_prefix="/ui", template_folder="templates")
bp.before_request(_load_account)
bp.after_request(_security_headers)


def accounts():
    return current_app.config["CLOUD"].accounts


def _page(account, created=None):
    return render_template("access_keys.html", account=account, keys=[k.to_dict() for k in
                                                                      accounts().list_keys(account.id)],
                           created=created, current=session.get("kid"), own=account.id == g.account.id)


def _back(account) -> str:
    own = account.id == g.account.id
    return url_for("web_credentials.access_keys", **({} if own else {"account": account.name}))


@bp.get("/access-keys")
def access_keys():
    return _page(target_account(request.args.get("account")))


@bp.post("/access-keys")
@action
def access_key_create():
    account = target_account(request.form.get("account"))
    key = accounts().create_key(account.id)
    # The secret is shown once, in this response only.
    return _page(account, created={"access_key_id": key.key_id, "secret_access_key": key.secret})


@bp.post("/access-keys/<key_id>/status")
@action
def access_key_status(key_id: str):
    info = key_of_caller(key_id)
    status = request.form.get("status", "")
    accounts().set_key_status(key_id, status)
    flash(f"{key_id} is now {status}.", "ok")
    return redirect(_back(accounts().get(info.account_id)))


@bp.post("/access-keys/<key_id>/delete")
@action
def access_key_delete(key_id: str):
    info = key_of_caller(key_id)
    accounts().delete_key(key_id)
    flash(f"Deleted access key {key_id}.", "ok")
    return redirect(_back(accounts().get(info.account_id)))


@bp.post("/accounts/<account_id>/disabled")
@action
def account_disabled(account_id: str):
    _admin()
    value = request.form.get("disabled")
    if value not in ("true", "false"):
        raise InvalidParameter("disabled must be true or false")
    if value == "true" and account_id == g.account.id:
        raise InvalidState("you cannot disable the account you are signed in as", code="CannotDisableSelf")
    a = accounts().set_disabled(account_id, value == "true")
    flash(f"{a.name} is now {'disabled: every key of it is refused' if a.disabled else 'enabled'}.", "ok")
    return redirect(url_for("web.accounts"))
