"""The `pocketcloud` command. Everything except `serve` and `images build` talks to the
server over HTTP with the same credentials a curl user has."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from emulator.accounts import read_credentials
from emulator.config import Config

from .client import ApiError, Client


def _config(ctx) -> Config:
    return ctx.obj["config"]


def _client(ctx) -> Client:
    return Client.from_env(_config(ctx))


def _out(ctx, data, columns: list[str] | None = None, key: str | None = None) -> None:
    if ctx.obj["output"] == "json" or columns is None:
        click.echo(json.dumps(data, indent=2))
        return
    rows = data[key] if key else [data]
    table = [[str(_get(r, c) if _get(r, c) is not None else "-") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in table]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)))
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _get(row: dict, col: str):
    if col == "ports":
        return ",".join(f"{p['host_ip']}:{p['host']}->{p['guest']}" for p in row.get("ports", [])) or None
    if col == "kinds":
        return ",".join(row.get("kind_names", [])) or None
    if col == "recipe":
        return (row.get("recipe") or {}).get("status")
    return row.get(col)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ApiError as e:
            click.echo(f"error: {e.code}: {e.message}", err=True)
            sys.exit(2 if e.status in (0,) else 1)


@click.group(cls=_Group)
@click.option("--home", type=click.Path(path_type=Path), help="state directory (POCKETCLOUD_HOME)")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", help="output format")
@click.pass_context
def main(ctx, home, output):
    """pocketcloud: a personal cloud with real VMs, containers and S3 on one machine."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = Config().with_(home=home)
    ctx.obj["output"] = output


@main.command()
@click.option("--host", help="address to bind (default 127.0.0.1)")
@click.option("--port", type=int, help="port (default 4566)")
@click.option("--threads", type=int, default=32, show_default=True)
@click.pass_context
def serve(ctx, host, port, threads):
    """Run the cloud server in the foreground."""
    from .server import serve as run

    config = _config(ctx).with_(host=host, port=port)
    ctx.obj["config"] = config
    from emulator.services import Cloud

    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as e:
            raise click.ClickException(
                f"cannot listen on {config.host}:{config.port} ({e.strerror}): is pocketcloud already running? "
                "Stop it, or pick another port with --port or POCKETCLOUD_PORT")
    boot = Cloud(config)
    boot.bootstrap()  # create the admin and its credentials before the first request
    boot.store.close()  # gunicorn forks the worker next
    click.echo(f"pocketcloud on {config.endpoint_url}  (home {config.home})", err=True)
    click.echo(f'credentials: {config.credentials_path}   use them with: eval "$(pocketcloud env)"', err=True)
    run(config, threads=threads)


@main.command()
@click.pass_context
def env(ctx):
    """Print export lines for the aws CLI and boto3: eval "$(pocketcloud env)"."""
    config = _config(ctx)
    if not config.credentials_path.exists():
        raise click.ClickException(f"{config.credentials_path} does not exist yet: start the server once (make up)")
    creds = read_credentials(config.credentials_path)
    click.echo(f"export AWS_ACCESS_KEY_ID={creds.key_id}")
    click.echo(f"export AWS_SECRET_ACCESS_KEY={creds.secret}")
    click.echo(f"export AWS_DEFAULT_REGION={config.region}")
    click.echo(f"export AWS_ENDPOINT_URL={config.endpoint_url}")


@main.command()
@click.pass_context
def status(ctx):
    """Show the server, its engines and who you are."""
    c = _client(ctx)
    info = c.call("GET", "/info")
    me = c.call("GET", "/accounts/me")
    if ctx.obj["output"] == "json":
        return _out(ctx, {"info": info, "account": me})
    click.echo(f"pocketcloud {info['pocketcloud']} at {info['endpoint']} (region {info['region']})")
    click.echo(f"signed in as {me['name']} ({me['role']})")
    for kind, e in info["engines"].items():
        click.echo(f"  {kind:10} {'up  ' if e['available'] else 'DOWN'} {e['description']}")


# -- images ---------------------------------------------------------------------------
@main.group()
def images():
    """Image catalog and offline image builds."""


@images.command("ls")
@click.pass_context
def images_ls(ctx):
    _out(ctx, _client(ctx).call("GET", "/images"), ["name", "kinds", "recipe"], key="images")


@images.command("build")
@click.argument("name")
@click.option("--force", is_flag=True, help="rebuild even when the recipe is unchanged")
@click.pass_context
def images_build(ctx, name, force):
    """Build image NAME from images/NAME/ on this host (progress is shown)."""
    from emulator.errors import CloudError
    from emulator.services import Cloud

    cloud = Cloud(_config(ctx))
    try:
        result = cloud.images.build(name, progress=lambda line: click.echo(line, err=True), force=force)
    except CloudError as e:
        raise click.ClickException(str(e))
    if ctx.obj["output"] == "json":
        _out(ctx, result)


# -- instances -----------------------------------------------------------------------
@main.group()
def instances():
    """Run and manage VM and container instances."""


INSTANCE_COLUMNS = ["id", "name", "kind", "image", "type", "state", "ports"]


@instances.command("run")
@click.argument("image")
@click.option("--kind", type=click.Choice(["container", "vm"]), default="container", show_default=True)
@click.option("--type", "itype", default="t2.micro", show_default=True)
@click.option("--name")
@click.option("--port", "ports", multiple=True, help="GUEST or HOST:GUEST, repeatable")
@click.option("--user-data", type=click.File("r"), help="a script run once at first boot")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE, repeatable")
@click.pass_context
def instances_run(ctx, image, kind, itype, name, ports, user_data, tags):
    forwards = []
    for p in ports:
        host, _, guest = p.rpartition(":")
        if not guest.isdigit() or (host and not host.isdigit()):
            raise click.BadParameter(f"{p!r}: use GUEST or HOST:GUEST", param_hint="--port")
        forwards.append({"guest": int(guest), **({"host": int(host)} if host else {})})
    payload = {"image": image, "kind": kind, "type": itype, "ports": forwards,
               "tags": dict(t.split("=", 1) if "=" in t else (t, "") for t in tags)}
    if name:
        payload["name"] = name
    if user_data:
        payload["user_data"] = user_data.read()
    _out(ctx, _client(ctx).call("POST", "/instances", json=payload), INSTANCE_COLUMNS)


@instances.command("ls")
@click.option("--state")
@click.option("--kind")
@click.pass_context
def instances_ls(ctx, state, kind):
    params = {k: v for k, v in (("state", state), ("kind", kind)) if v}
    _out(ctx, _client(ctx).call("GET", "/instances", params=params), INSTANCE_COLUMNS, key="instances")


@instances.command("show")
@click.argument("instance_id")
@click.pass_context
def instances_show(ctx, instance_id):
    _out(ctx, _client(ctx).call("GET", f"/instances/{instance_id}"))


def _action(verb: str):
    @click.argument("instance_id")
    @click.pass_context
    def cmd(ctx, instance_id):
        _out(ctx, _client(ctx).call("POST", f"/instances/{instance_id}/{verb}"), INSTANCE_COLUMNS)

    cmd.__doc__ = f"{verb.capitalize()} an instance."
    return cmd


for _verb in ("start", "stop", "reboot"):
    instances.command(_verb)(_action(_verb))


@instances.command("rm")
@click.argument("instance_id")
@click.pass_context
def instances_rm(ctx, instance_id):
    """Terminate an instance."""
    _out(ctx, _client(ctx).call("DELETE", f"/instances/{instance_id}"), INSTANCE_COLUMNS)


@instances.command("console")
@click.argument("instance_id")
@click.pass_context
def instances_console(ctx, instance_id):
    click.echo(_client(ctx).call("GET", f"/instances/{instance_id}/console"), nl=False)


@instances.command("exec")
@click.argument("instance_id")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def instances_exec(ctx, instance_id, command):
    res = _client(ctx).call("POST", f"/instances/{instance_id}/exec", json={"command": list(command)})
    if ctx.obj["output"] == "json":
        return _out(ctx, res)
    click.echo(res["stdout"], nl=False)
    click.echo(res["stderr"], nl=False, err=True)
    sys.exit(res["exit_code"])


# -- accounts -------------------------------------------------------------------------
@main.group()
def accounts():
    """Accounts and their keys (admin)."""


@accounts.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["user", "admin"]), default="user")
@click.pass_context
def accounts_create(ctx, name, role):
    _out(ctx, _client(ctx).call("POST", "/accounts", json={"name": name, "role": role}))


@accounts.command("ls")
@click.pass_context
def accounts_ls(ctx):
    _out(ctx, _client(ctx).call("GET", "/accounts"), ["id", "name", "role", "max_instances"], key="accounts")


if __name__ == "__main__":
    main()
