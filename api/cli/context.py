"""What every command reads from its click context (config, client, output format), and how
a failure leaves the process: one message (plus a hint) on stderr and a stable exit code."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from emulator.config import Config

from .client import ApiError, Client

EXIT_API, EXIT_USAGE = 1, 2

HINTS = {
    "AuthFailure": "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `eval \"$(pocketcloud env)\"` sets the admin's",
    "SignatureDoesNotMatch": "the secret does not match this access key id; check AWS_SECRET_ACCESS_KEY",
    "InvalidAccessKeyId": "this access key id is unknown to the server; check AWS_ACCESS_KEY_ID "
                          "(or `eval \"$(pocketcloud env)\"`)",
    "InvalidInstanceID.NotFound": "`pocketcloud instances ls` lists your instances",
    "InvalidInstanceID.Malformed": "instance ids look like i-0123456789abcdef0; `pocketcloud instances ls` lists yours",
    "InvalidAMIID.NotFound": "`pocketcloud images ls` lists the images; `pocketcloud images build tiny` builds one",
    "IncorrectInstanceState": "`pocketcloud instances show ID` shows its state",
    "InstanceLimitExceeded": "terminate one (`pocketcloud instances rm ID`) or ask an admin to run "
                             "`pocketcloud accounts quota NAME --max-instances N`",
    "InvalidInstanceType": "`pocketcloud instances types` lists the instance types",
    "InvalidKeyPair.NotFound": "`pocketcloud keys ls` lists your key pairs; `pocketcloud keys create NAME` makes one",
    "InvalidKeyPair.Duplicate": "pick another name, or `pocketcloud keys rm NAME` first",
    "UnauthorizedOperation": "this needs an admin's keys (`eval \"$(pocketcloud env)\"` on the server host)",
    "AccessDenied": "you do not own this resource and it is not shared with you",
    "NotImplemented": "this pocketcloud does not offer that yet; `pocketcloud status` shows what is up",
    "ServiceUnavailable": "`pocketcloud status` shows which engine is down; `make up` (re)starts them",
    "PortInUse": "give only the guest port (--port 80) and pocketcloud picks a free host port",
    "AccountAlreadyExists": "`pocketcloud accounts ls` lists the accounts",
    "NoSuchBucket": "`pocketcloud buckets ls` lists your buckets",
    "NoSuchKey": "`pocketcloud buckets ls s3://BUCKET/` lists its objects",
    "BucketNotEmpty": "empty it first, or `pocketcloud buckets rb NAME --force`",
}


class LocalError(click.ClickException):
    """A problem on this side (missing file, bad combination of options): exit 2."""
    exit_code = EXIT_USAGE


def output_of(ctx: click.Context) -> str:
    return (ctx.find_root().obj or {}).get("output", "table")


def json_mode(ctx: click.Context) -> bool:
    return output_of(ctx) == "json"


def config_of(ctx: click.Context) -> Config:
    return ctx.find_root().obj["config"]


def client_of(ctx: click.Context) -> Client:
    """One client per process, built on first use (commands that never call the server,
    like `env`, never need credentials)."""
    obj = ctx.find_root().obj
    if obj.get("client") is None:
        obj["client"] = Client.from_env(config_of(ctx))
    return obj["client"]


def fail(output: str, err: ApiError) -> None:
    """Report an API error once and exit: 2 when no answer came (unreachable, no
    credentials), 1 when the cloud said no."""
    if output == "json":
        click.echo(json.dumps(err.to_dict()), err=True)
    else:
        click.echo(f"error: {err.message} ({err.code})", err=True)
        hint = HINTS.get(err.code)
        if hint and "`" in hint and hint.split("`")[1] in err.message:
            hint = None  # the server's message already says it
        if hint:
            click.echo(f"hint: {hint}", err=True)
    sys.exit(EXIT_USAGE if err.status == 0 else EXIT_API)


class ApiGroup(click.Group):
    """The root group: an ApiError from any command ends in `fail`."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ApiError as e:
            fail((ctx.obj or {}).get("output", "table"), e)


def keys_dir(ctx: click.Context) -> Path:
    """Where `keys create` saves private keys and `instances ssh` looks for them."""
    return config_of(ctx).home / "keys"
