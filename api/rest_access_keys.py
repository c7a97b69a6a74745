"""Access keys over REST, shaped like IAM's (CreateAccessKey, ListAccessKeys, UpdateAccessKey,
DeleteAccessKey), under /api/v1:

    GET    /access-keys[?account=NAME]        your keys (an admin: any account's), never a secret
    POST   /access-keys  {"account"?: NAME}   a new Active key; the secret is in this answer only
    PATCH  /access-keys/KEY_ID {"status": "Active" | "Inactive"}
    DELETE /access-keys/KEY_ID

At most two keys per account, as IAM. A user sees and changes only its own keys; another
account's key id answers 404 like a missing one. Rotation: create the second key, move
clients to it, deactivate the old one, delete it.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from emulator.accounts import Account
from emulator.errors import Forbidden, InvalidParameter

from .rest import _only, authenticated, body, cloud

bp = Blueprint("rest_access_keys", __name__, url_prefix="/api/v1")


def target_account(name: str | None) -> Account:
    """The account whose keys are meant: the caller's, or (admins only) the one named."""
    if name in (None, "", g.account.name, g.account.id):
        return g.account
    if not isinstance(name, str):
        raise InvalidParameter("account must be an account name or id")
    if not g.account.is_admin:
        raise Forbidden("only an admin can manage another account's access keys")
    accounts = cloud().accounts
    return accounts.get(name) if name.isdigit() and len(name) == 12 else accounts.by_name(name)


def key_of_caller(key_id: str):
    """The key, if the caller may manage it (an admin: any key)."""
    return cloud().accounts.key(key_id, None if g.account.is_admin else g.account.id)


def _view(info) -> dict:
    out = info.to_dict()
    out["account_name"] = cloud().accounts.get(info.account_id).name
    return out


@bp.get("/access-keys")
@authenticated
def list_access_keys():
    account = target_account(request.args.get("account"))
    return jsonify(access_keys=[_view(k) for k in cloud().accounts.list_keys(account.id)])


@bp.post("/access-keys")
@authenticated
def create_access_key():
    data = _only(body(), {"account"})
    account = target_account(data.get("account"))
    accounts = cloud().accounts
    key = accounts.create_key(account.id)
    return jsonify({**_view(accounts.key(key.key_id)), "secret_access_key": key.secret}), 201


@bp.patch("/access-keys/<key_id>")
@authenticated
def update_access_key(key_id: str):
    data = _only(body(), {"status"})
    key_of_caller(key_id)
    return jsonify(_view(cloud().accounts.set_key_status(key_id, data.get("status"))))


@bp.delete("/access-keys/<key_id>")
@authenticated
def delete_access_key(key_id: str):
    key_of_caller(key_id)
    cloud().accounts.delete_key(key_id)
    return "", 204
