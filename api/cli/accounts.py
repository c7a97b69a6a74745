"""`pocketcloud accounts`: create, list, quotas (admin)."""
from __future__ import annotations

import click

from .context import HelpGroup, client_of, json_mode
from .output import detail, emit, note, print_json

ACCOUNT_COLUMNS = ["id", "name", "role", "max_instances", "storage_quota", "disabled"]


@click.group(cls=HelpGroup)
def accounts():
    """Accounts, their keys and quotas (admin)."""


@accounts.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user", show_default=True)
@click.option("--max-instances", type=int, help="instance quota (default 20)")
@click.pass_context
def accounts_create(ctx, name, role, max_instances):
    """Create an account; its access key and secret are shown once."""
    payload = {"name": name, "role": role}
    if max_instances is not None:
        payload["max_instances"] = max_instances
    acct = client_of(ctx).call("POST", "/accounts", json=payload)
    if json_mode(ctx):
        return print_json(acct)
    detail(ctx, acct, [("id", "id"), ("name", "name"), ("role", "role"), ("max instances", "max_instances"),
                       ("access key id", "access_key_id"), ("secret", "secret_access_key")])
    note(ctx, "the secret is shown only now; give it to the account's owner:\n"
              f"  export AWS_ACCESS_KEY_ID={acct['access_key_id']} AWS_SECRET_ACCESS_KEY={acct['secret_access_key']}")


@accounts.command("ls")
@click.pass_context
def accounts_ls(ctx):
    """List accounts (an ordinary user sees only itself)."""
    emit(ctx, client_of(ctx).call("GET", "/accounts"), ACCOUNT_COLUMNS, key="accounts")


def parse_size(text: str) -> int | None:
    """`10G`, `512M`, `1.5GiB`, `1000000` -> bytes; `none`/`unlimited` -> None."""
    t = text.strip().lower().replace(" ", "")
    if t in ("none", "unlimited", "-"):
        return None
    units = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024 ** 2, "mb": 1000 ** 2, "mib": 1024 ** 2,
             "g": 1024 ** 3, "gb": 1000 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4, "tb": 1000 ** 4, "tib": 1024 ** 4}
    num = t.rstrip("kmgtib")
    unit = t[len(num):]
    try:
        value = float(num)
    except ValueError:
        value = -1
    if unit not in units or value < 0:
        raise click.BadParameter(f"{text!r}: use bytes or a size like 500M, 10G, 1GiB, or 'none'")
    return int(value * units[unit])


@accounts.command("quota")
@click.argument("name")
@click.option("--max-instances", type=click.IntRange(0, 1000), help="instances the account may have")
@click.option("--storage", "storage", help="storage quota: 500M, 10G, ... or 'none' for unlimited")
@click.pass_context
def accounts_quota(ctx, name, max_instances, storage):
    """Show or set an account's quotas (admin)."""
    c = client_of(ctx)
    if max_instances is None and storage is None:
        acct = c.call("GET", f"/accounts/{name}")
    else:
        payload = {}
        if max_instances is not None:
            payload["max_instances"] = max_instances
        if storage is not None:
            payload["storage_quota"] = parse_size(storage)
        acct = c.call("PATCH", f"/accounts/{name}", json=payload)
    detail(ctx, acct, [("name", "name"), ("role", "role"), ("max instances", "max_instances"),
                       ("instances", "instances"), ("storage quota", "storage_quota")])


def _set_disabled(ctx, name: str, disabled: bool) -> None:
    acct = client_of(ctx).call("PATCH", f"/accounts/{name}", json={"disabled": disabled})
    emit(ctx, acct, ACCOUNT_COLUMNS)


@accounts.command("disable")
@click.argument("name")
@click.pass_context
def accounts_disable(ctx, name):
    """Disable an account (admin): every key of it is refused; its instances and buckets stay."""
    _set_disabled(ctx, name, True)


@accounts.command("enable")
@click.argument("name")
@click.pass_context
def accounts_enable(ctx, name):
    """Enable a disabled account again (admin)."""
    _set_disabled(ctx, name, False)
