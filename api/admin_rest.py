"""Admin REST endpoints the CLI and console need beyond api/rest.py:

GET   /api/v1/accounts/<name>   one account with its quotas and usage (admin, or the account itself)
PATCH /api/v1/accounts/<name>   {"max_instances": N, "storage_quota": BYTES|null, "disabled": BOOL}  (admin)

A disabled account keeps its instances and buckets; every key of it is refused.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from emulator.errors import CloudError, Forbidden, InvalidParameter, InvalidState

from .rest import _only, authenticated, body, cloud

bp = Blueprint("admin_rest", __name__, url_prefix="/api/v1")


def account_view(account) -> dict:
    c = cloud()
    out = account.to_dict()
    out["instances"] = sum(1 for i in c.describe_instances(account) if i.state != "terminated")
    try:
        out["storage_usage"] = c.storage.account_usage(account.id)
    except CloudError:  # the engine is down: the account is still worth showing
        pass
    return out


def _target(name: str):
    if not g.account.is_admin and name not in (g.account.name, g.account.id):
        raise Forbidden("only an admin can see other accounts")
    accts = cloud().accounts
    return accts.get(name) if name.isdigit() and len(name) == 12 else accts.by_name(name)


@bp.get("/accounts/<name>")
@authenticated
def get_account(name: str):
    return jsonify(account_view(_target(name)))


@bp.patch("/accounts/<name>")
@authenticated
def set_account_limits(name: str):
    data = _only(body(), {"max_instances", "storage_quota", "disabled"})
    if not g.account.is_admin:
        raise Forbidden("only an admin can change quotas")
    if not data:
        raise InvalidParameter("give max_instances, storage_quota and/or disabled", code="MissingParameter")
    mi = data.get("max_instances")
    if "max_instances" in data and (isinstance(mi, bool) or not isinstance(mi, int) or not 0 <= mi <= 1000):
        raise InvalidParameter("max_instances must be an integer between 0 and 1000")
    sq = data.get("storage_quota", -1)
    if sq is not None and sq != -1 and (isinstance(sq, bool) or not isinstance(sq, int) or sq < 0):
        raise InvalidParameter("storage_quota must be a number of bytes (>= 0) or null for unlimited")
    disabled = data.get("disabled")
    if "disabled" in data and not isinstance(disabled, bool):
        raise InvalidParameter("disabled must be true or false")
    target = _target(name)
    if disabled and target.id == g.account.id:
        raise InvalidState("you cannot disable the account you are signed in as", code="CannotDisableSelf")
    accounts = cloud().accounts
    if disabled is not None:  # checked first: a refused disable changes nothing else either
        accounts.set_disabled(target.id, disabled)
    updated = accounts.set_limits(target.id, max_instances=mi, storage_quota=sq)
    return jsonify(account_view(updated))
