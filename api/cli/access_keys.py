"""`pocketcloud access-keys`: the API keys of an account (IAM-shaped: two at most, Active or
Inactive), and `accounts disable/enable` lives in accounts.py."""
from __future__ import annotations

import click

from .context import client_of, json_mode
from .output import detail, emit, note, print_json

COLUMNS = ["access_key_id", "status", "created_at", "account_name"]
ACCOUNT = click.option("--account", help="another account's keys (admin); default: your own")


@click.group("access-keys")
def access_keys():
    """API access keys: create, list, deactivate, activate, delete (rotate with two).

    \b
    Rotate:   pocketcloud access-keys create           (a second key; its secret shown once)
              ... move your tools to the new key ...
              pocketcloud access-keys deactivate OLD_ID (refused everywhere at once; reversible)
              pocketcloud access-keys rm OLD_ID
    If the admin's keys are all gone: delete ~/.pocketcloud/credentials and restart the
    server, which writes a fresh admin key there.
    """


@access_keys.command("create")
@ACCOUNT
@click.pass_context
def keys_create(ctx, account):
    """Create an access key; its secret is shown once."""
    key = client_of(ctx).call("POST", "/access-keys", json={"account": account} if account else {})
    if json_mode(ctx):
        return print_json(key)
    detail(ctx, key, [("access key id", "access_key_id"), ("secret", "secret_access_key"), ("status", "status"),
                      ("account", "account_name")])
    note(ctx, "the secret is shown only now:\n"
              f"  export AWS_ACCESS_KEY_ID={key['access_key_id']} AWS_SECRET_ACCESS_KEY={key['secret_access_key']}")


@access_keys.command("ls")
@ACCOUNT
@click.pass_context
def keys_ls(ctx, account):
    """List access keys (never their secrets)."""
    emit(ctx, client_of(ctx).call("GET", "/access-keys", params={"account": account} if account else None),
         COLUMNS, key="access_keys", empty="no access keys")


def _set_status(ctx, key_id: str, status: str) -> None:
    key = client_of(ctx).call("PATCH", f"/access-keys/{key_id}", json={"status": status})
    emit(ctx, key, COLUMNS)


@access_keys.command("deactivate", short_help="Make a key Inactive: requests signed with it fail.")
@click.argument("key_id")
@click.pass_context
def keys_deactivate(ctx, key_id):
    """Make a key Inactive: every request signed with it is refused, until it is activated."""
    _set_status(ctx, key_id, "Inactive")


@access_keys.command("activate")
@click.argument("key_id")
@click.pass_context
def keys_activate(ctx, key_id):
    """Make an Inactive key Active again."""
    _set_status(ctx, key_id, "Active")


@access_keys.command("rm")
@click.argument("key_id")
@click.pass_context
def keys_rm(ctx, key_id):
    """Delete a key for good."""
    client_of(ctx).call("DELETE", f"/access-keys/{key_id}")
    if json_mode(ctx):
        print_json({"access_key_id": key_id, "deleted": True})
    else:
        click.echo(f"deleted access key {key_id}", err=True)
