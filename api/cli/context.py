"""What every command reads from its click context (config, client, output format), how a
name becomes an id, and how a failure leaves the process: one message (plus a hint) on
stderr, printed once, and a stable exit code."""
from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

import click

from emulator.config import Config

from .client import ApiError, Client

EXIT_API, EXIT_USAGE = 1, 2
INSTANCE_ID = re.compile(r"i-[0-9a-f]{17}")

HINTS = {
    "AuthFailure": "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; `eval \"$(pocketcloud env)\"` sets the admin's",
    "SignatureDoesNotMatch": "the secret does not match this access key id; check AWS_SECRET_ACCESS_KEY",
    "InvalidAccessKeyId": "this access key id is unknown to the server; check AWS_ACCESS_KEY_ID "
                          "(or `eval \"$(pocketcloud env)\"`)",
    "InvalidInstanceID.NotFound": "`pocketcloud instances ls` lists your instances",
    "InvalidInstanceID.Malformed": "instance ids look like i-0123456789abcdef0; `pocketcloud instances ls` lists yours",
    "AmbiguousName": "use the instance id; `pocketcloud instances ls` lists your instances",
    "InvalidAMIID.NotFound": "`pocketcloud images ls` lists the images and whether each is built",
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
    "WaitTimeout": "`pocketcloud instances console ID` shows how far it got",
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


def hint_for(err: ApiError) -> str | None:
    """The next step for this error, unless the server's message already names one (a
    specific `pocketcloud images build debian-12` beats a general listing command)."""
    hint = HINTS.get(err.code)
    if hint and "`pocketcloud " in err.message:
        return None
    return hint


def report(output: str, err: ApiError) -> None:
    """Print one error (and its hint) on stderr, once; JSON mode prints `{"error": ...}`."""
    if output == "json":
        click.echo(json.dumps(err.to_dict()), err=True)
        return
    click.echo(f"error: {err.message} ({err.code})", err=True)
    hint = hint_for(err)
    if hint:
        click.echo(f"hint: {hint}", err=True)


def exit_code_for(err: ApiError) -> int:
    """2 when no answer came (unreachable, no credentials), 1 when the cloud said no."""
    return EXIT_USAGE if err.status == 0 else EXIT_API


def fail(output: str, err: ApiError) -> None:
    """Report an API error once and exit."""
    report(output, err)
    sys.exit(exit_code_for(err))


class HelpGroup(click.Group):
    """A group whose command list shows each command's whole one-line summary (click cuts
    them at 45 characters with "..." otherwise, mid-sentence)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class ApiGroup(HelpGroup):
    """The root group: an ApiError from any command ends in `fail`."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ApiError as e:
            fail((ctx.obj or {}).get("output", "table"), e)


def keys_dir(ctx: click.Context) -> Path:
    """Where `keys create` saves private keys and `instances ssh` looks for them."""
    return config_of(ctx).home / "keys"


def tilde(path: Path | str) -> str:
    """A path under $HOME as ~/..., for people (JSON output keeps absolute paths)."""
    text, home = str(path), str(Path.home())
    if home not in ("/", "") and (text == home or text.startswith(home + "/")):
        return "~" + text[len(home):]
    return text


# -- names -> ids, and "did you mean" --------------------------------------------------------
def did_you_mean(word: str, candidates) -> str:
    """` (did you mean 'web'?)`, or empty when nothing is close."""
    close = difflib.get_close_matches(str(word), sorted({str(c) for c in candidates if c}), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def with_suggestion(err: ApiError, word: str, candidates) -> ApiError:
    """The same error, its message ending in a suggestion when one of CANDIDATES is close."""
    more = did_you_mean(word, candidates)
    return ApiError(err.status, err.code, err.message + more) if more else err


def pick_instance(rows: list[dict], ref: str) -> str:
    """The id REF names among ROWS: an id, a unique name, or a unique id prefix (i-1a2b).

    A name shared by several instances counts only the live ones (terminated instances stay
    listed for an hour); still several -> an error that lists them."""
    if INSTANCE_ID.fullmatch(ref):
        return ref
    named = [r for r in rows if r.get("name") == ref and r.get("id") != ref]
    if len(named) > 1:
        named = [r for r in named if r.get("state") != "terminated"] or named
    if not named and ref.startswith("i-") and len(ref) >= 6:
        named = [r for r in rows if r["id"].startswith(ref)]
    if len(named) == 1:
        return named[0]["id"]
    if len(named) > 1:
        listing = ", ".join(f"{r['id']} ({r.get('state')})" for r in named)
        raise ApiError(400, "AmbiguousName", f"{len(named)} of your instances match {ref!r}: {listing}")
    if ref.startswith("i-"):
        return ref  # an id the server judges (malformed, or not yours): its error says which
    raise ApiError(404, "InvalidInstanceID.NotFound", f"you have no instance named {ref!r}"
                   + did_you_mean(ref, [r.get("name") for r in rows if r.get("state") != "terminated"]))


def resolve_instance(ctx: click.Context, ref: str) -> str:
    """An instance id for REF (an id, a name, or an id prefix) within your own instances;
    ids go straight through without a listing."""
    if INSTANCE_ID.fullmatch(ref):
        return ref
    return pick_instance(client_of(ctx).call("GET", "/instances")["instances"], ref)
