"""The `pocketcloud` command.

Everything except `serve`, `env` and `images build` talks to the server over HTTP with the
same credentials a curl user has (env AWS_* or the credentials file), so it works against a
remote pocketcloud too; it never reads the database.

Exit codes scripts can trust:
  0  success
  1  the cloud answered with an error (the message says what to do next)
  2  usage error, no credentials, or the server is unreachable
`instances exec` and `instances ssh` exit with the remote command's own code.
Tables go to stdout, progress and errors to stderr; `-o json` prints JSON on stdout and,
on failure, `{"error": {...}}` on stderr.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import click

from emulator.config import Config

from .client import ApiError, Client, endpoint_of, read_credentials_file
from .text import fmt_size

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


# -- output -----------------------------------------------------------------------------
def _json_mode(ctx) -> bool:
    return ctx.find_root().obj["output"] == "json"


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output keeps whole lines (no wrapping at 80 columns), so `| grep` and `| awk` work.
    return Console(file=stream, width=None if stream.isatty() else 250, soft_wrap=not stream.isatty(),
                   highlight=False)


def _print_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


def _cell(row: dict, col: str) -> str:
    getter = CELLS.get(col)
    value = getter(row) if getter else row.get(col)
    return "-" if value in (None, "", [], {}) else str(value)


def _table(rows: list[dict], columns: list[str], title: str | None = None, empty: str | None = None) -> None:
    if not rows:
        if empty:
            click.echo(empty, err=True)
        return
    if not sys.stdout.isatty():
        # Piped: plain aligned columns, no colour, no wrapping, no trailing blanks (for grep/awk/cut).
        cells = [[_cell(r, c) for c in columns] for r in rows]
        heads = [c.upper() for c in columns]
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
        for row in [heads] + cells:
            click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, header_style="bold")
    for c in columns:
        table.add_column(c.upper().replace("_", " "), no_wrap=c in ("id", "ports", "name"))
    for r in rows:
        table.add_row(*[_style(c, _cell(r, c)) for c in columns])
    _console().print(table)


STATE_STYLE = {"running": "green", "pending": "yellow", "stopping": "yellow", "shutting-down": "yellow",
               "stopped": "red", "terminated": "dim"}


def _style(col: str, value: str) -> str:
    from rich.markup import escape

    value = escape(value)
    if col == "state" and value in STATE_STYLE:
        return f"[{STATE_STYLE[value]}]{value}[/]"
    return value


def _size(n) -> str | None:
    return None if n is None else fmt_size(n)


CELLS = {
    "ports": lambda r: ",".join(f"{p.get('host_ip', '127.0.0.1')}:{p['host']}->{p['guest']}"
                                for p in r.get("ports", [])),
    "kinds": lambda r: ",".join(r.get("kind_names") or list(r.get("kinds", {}))),
    "recipe": lambda r: (r.get("recipe") or {}).get("status"),
    "size": lambda r: _size(max((k.get("size") or 0) for k in r["kinds"].values()) if r.get("kinds") else r.get("size")),
    "memory": lambda r: f"{r['memory_mib']} MiB" if r.get("memory_mib") else None,
    "storage_quota": lambda r: _size(r.get("storage_quota")) or "unlimited",
    "fingerprint": lambda r: r.get("fingerprint"),
}


def emit(ctx, data, columns: list[str] | None = None, key: str | None = None, empty: str | None = None) -> None:
    """JSON as the server sent it with -o json; a table (list or one row) otherwise."""
    if _json_mode(ctx) or columns is None:
        return _print_json(data)
    rows = data[key] if key else [data]
    _table(rows, columns, empty=empty)


def _detail(ctx, data: dict, fields: list[tuple[str, str]]) -> None:
    """One resource as `label  value` lines."""
    if _json_mode(ctx):
        return _print_json(data)
    from rich.markup import escape

    con = _console()
    width = max(len(label) for label, _ in fields)
    for label, col in fields:
        con.print(f"[bold]{label.ljust(width)}[/]  {_style(col, _cell(data, col)) if col in data or col in CELLS else escape('-')}")


def _note(ctx, message: str) -> None:
    """Human chatter on stderr; silent in json mode."""
    if not _json_mode(ctx):
        click.echo(message, err=True)


# -- context -----------------------------------------------------------------------------
def _config(ctx) -> Config:
    return ctx.find_root().obj["config"]


def _client(ctx) -> Client:
    obj = ctx.find_root().obj
    if obj.get("client") is None:
        obj["client"] = Client.from_env(_config(ctx))
    return obj["client"]


def _fail(ctx_output: str, err: ApiError) -> None:
    if ctx_output == "json":
        click.echo(json.dumps(err.to_dict()), err=True)
    else:
        click.echo(f"error: {err.message} ({err.code})", err=True)
        hint = HINTS.get(err.code)
        if hint and "`" in hint and hint.split("`")[1] in err.message:
            hint = None  # the server's message already says it
        if hint:
            click.echo(f"hint: {hint}", err=True)
    sys.exit(EXIT_USAGE if err.status == 0 else EXIT_API)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ApiError as e:
            _fail((ctx.obj or {}).get("output", "table"), e)


# -- completion of live names (quiet: a completion must never print errors) --------------
def _complete(path: str, key: str, field: str):
    def complete(ctx, param, incomplete):
        try:
            config = Config()
            from .client import find_credentials

            creds = find_credentials(config)
            c = Client(endpoint_of(config), creds.key_id, creds.secret, timeout=2)
            return [r[field] for r in c.call("GET", path)[key] if str(r[field]).startswith(incomplete)]
        except Exception:  # noqa: BLE001
            return []

    return complete


complete_instance = _complete("/instances", "instances", "id")
complete_image = _complete("/images", "images", "name")
complete_key = _complete("/keys", "keys", "name")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(path_type=Path), help="state directory (POCKETCLOUD_HOME, default ~/.pocketcloud)")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True,
              envvar="POCKETCLOUD_OUTPUT", help="output format (POCKETCLOUD_OUTPUT)")
@click.version_option(package_name="pocketcloud", prog_name="pocketcloud")
@click.pass_context
def main(ctx, home, output):
    """pocketcloud: a personal cloud with real VMs, containers and S3 on one machine.

    \b
    Start:    make up                      (or: pocketcloud serve)
    Keys:     eval "$(pocketcloud env)"
    Try:      pocketcloud instances run tiny --name web --port 80 --wait
              pocketcloud instances exec web-ID uname -r
              pocketcloud explain ID
    The server is POCKETCLOUD_ENDPOINT (or AWS_ENDPOINT_URL), default http://127.0.0.1:4566.
    """
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
    click.echo(f"console:     {config.endpoint_url}/ui", err=True)
    click.echo(f'credentials: {config.credentials_path}   use them with: eval "$(pocketcloud env)"', err=True)
    run(config, threads=threads)


@main.command()
@click.pass_context
def env(ctx):
    """Print export lines for the aws CLI and boto3: eval "$(pocketcloud env)"."""
    config = _config(ctx)
    if not config.credentials_path.exists():
        raise LocalError(f"{config.credentials_path} does not exist yet: start the server once (make up)")
    key, secret = read_credentials_file(config.credentials_path)
    if _json_mode(ctx):
        return _print_json({"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                            "AWS_DEFAULT_REGION": config.region, "AWS_ENDPOINT_URL": config.endpoint_url})
    click.echo(f"export AWS_ACCESS_KEY_ID={key}")
    click.echo(f"export AWS_SECRET_ACCESS_KEY={secret}")
    click.echo(f"export AWS_DEFAULT_REGION={config.region}")
    click.echo(f"export AWS_ENDPOINT_URL={config.endpoint_url}")


@main.command()
@click.pass_context
def status(ctx):
    """Show the server, its engines and who you are."""
    c = _client(ctx)
    info = c.call("GET", "/info")
    me = c.call("GET", "/accounts/me")
    if _json_mode(ctx):
        return _print_json({"info": info, "account": me})
    con = _console()
    con.print(f"pocketcloud [bold]{info['pocketcloud']}[/] at {c.endpoint} (region {info['region']}); "
              f"console at {c.endpoint}/ui")
    con.print(f"signed in as [bold]{me['name']}[/] ({me['role']}, up to {me['max_instances']} instances)")
    for kind, e in info["engines"].items():
        mark = "[green]up  [/]" if e["available"] else "[red]DOWN[/]"
        con.print(f"  {kind:10} {mark} {e['description']}")
    hv = info.get("hypervisor") or {}
    con.print(f"  {'hypervisor':10} {hv.get('in_use') or '-'} (mode {hv.get('mode')}; {hv.get('reason', '')})")
    st = info.get("storage") or {}
    con.print(f"  {'storage':10} {st.get('engine') or '-'} ({st.get('status', '')})")
    host = info.get("host") or {}
    if host:
        con.print(f"  {'host':10} {host.get('os')} kernel {host.get('kernel')}, "
                  f"{(host.get('cpu') or {}).get('count')} CPUs{' (itself a VM)' if host.get('runs_in_vm') else ''}")


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script: eval "$(pocketcloud completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    click.echo(cls(main, {}, "pocketcloud", "_POCKETCLOUD_COMPLETE").source())


# -- images -------------------------------------------------------------------------------
@main.group()
def images():
    """Image catalog and offline image builds."""


@images.command("ls")
@click.pass_context
def images_ls(ctx):
    """List the images you can run."""
    emit(ctx, _client(ctx).call("GET", "/images"), ["name", "kinds", "size", "recipe"], key="images",
         empty="no images yet: `pocketcloud images build tiny`")


@images.command("build")
@click.argument("name")
@click.option("--force", is_flag=True, help="rebuild even when the recipe is unchanged")
@click.pass_context
def images_build(ctx, name, force):
    """Build image NAME from images/NAME/ on this host, offline, and register it.

    This runs here, on the server's host (it needs the recipes and the engines), with
    progress on stderr.
    """
    from emulator.errors import CloudError
    from emulator.services import Cloud

    cloud = Cloud(_config(ctx))
    started = time.monotonic()
    err = sys.stderr.isatty() and not _json_mode(ctx)
    try:
        if err:
            con = _console(stderr=True)
            with con.status(f"building {name}") as st:
                def progress(line: str) -> None:
                    con.log(line, markup=False)
                    st.update(f"building {name} ({time.monotonic() - started:.0f}s): {line[:60]}")

                result = cloud.images.build(name, progress=progress, force=force)
        else:
            result = cloud.images.build(
                name, force=force,
                progress=lambda line: click.echo(f"[{time.monotonic() - started:6.1f}s] {line}", err=True))
    except CloudError as e:
        _fail(ctx.find_root().obj["output"], ApiError(400, e.code, str(e)))
    result["seconds"] = round(time.monotonic() - started, 1)
    if _json_mode(ctx):
        _print_json(result)
    else:
        click.echo(f"{name}: built in {result['seconds']}s ({', '.join(result['kinds'])})", err=True)


@images.command("rm")
@click.argument("name", shell_complete=complete_image)
@click.pass_context
def images_rm(ctx, name):
    """Remove an image from the catalog (admin)."""
    _client(ctx).call("DELETE", f"/images/{name}")
    emit(ctx, {"name": name, "removed": True})


# -- instances ---------------------------------------------------------------------------
@main.group()
def instances():
    """Run and manage VM and container instances."""


INSTANCE_COLUMNS = ["id", "name", "kind", "image", "type", "state", "ports"]
INSTANCE_FIELDS = [("id", "id"), ("name", "name"), ("kind", "kind"), ("image", "image"), ("type", "type"),
                   ("vcpus", "vcpus"), ("memory", "memory"), ("state", "state"), ("reason", "state_reason"),
                   ("forwards", "ports"), ("private ip", "private_ip"), ("key", "key_name"), ("tags", "tags"),
                   ("created", "created_at"), ("launched", "launched_at"), ("terminated", "terminated_at")]


def _parse_ports(ports) -> list[dict]:
    forwards = []
    for p in ports:
        host, _, guest = p.rpartition(":")
        if not guest.isdigit() or (host and not host.isdigit()):
            raise click.BadParameter(f"{p!r}: use GUEST or HOST:GUEST, e.g. 80 or 8080:80", param_hint="--port")
        forwards.append({"guest": int(guest), **({"host": int(host)} if host else {})})
    return forwards


def wait_for_state(ctx, c: Client, inst: dict, want: str, timeout: float) -> dict:
    """Poll until the instance is `want`; a spinner on a terminal, state changes otherwise."""
    started = time.monotonic()
    last = None
    tty = sys.stderr.isatty() and not _json_mode(ctx)
    status = _console(stderr=True).status("") if tty else None
    if status:
        status.start()
    try:
        while True:
            state = inst["state"]
            elapsed = time.monotonic() - started
            if state != last:
                if status:
                    _console(stderr=True).log(f"{inst['id']}: {state}")
                else:
                    _note(ctx, f"[{elapsed:5.1f}s] {inst['id']}: {state}")
                last = state
            if state == want:
                return inst
            if state in ("terminated", "stopped") and want == "running":
                raise ApiError(409, "IncorrectInstanceState",
                               f"instance {inst['id']} became {state} while waiting for {want}: "
                               f"{inst.get('state_reason') or 'see `pocketcloud instances console ' + inst['id'] + '`'}")
            if elapsed > timeout:
                raise ApiError(408, "WaitTimeout", f"instance {inst['id']} is still {state} after {timeout:.0f}s; "
                                                   f"`pocketcloud instances console {inst['id']}` shows its boot log")
            if status:
                status.update(f"waiting for {inst['id']} to be {want}: {state} ({elapsed:.0f}s)")
            time.sleep(0.5 if elapsed < 10 else 1.0)
            inst = c.call("GET", f"/instances/{inst['id']}")
    finally:
        if status:
            status.stop()


@instances.command("run")
@click.argument("image", shell_complete=complete_image)
@click.option("--kind", type=click.Choice(["container", "vm"]), default="container", show_default=True)
@click.option("--type", "itype", default="t2.micro", show_default=True, help="see `pocketcloud instances types`")
@click.option("--name")
@click.option("--port", "-p", "ports", multiple=True, help="GUEST or HOST:GUEST, repeatable (host side binds 127.0.0.1)")
@click.option("--user-data", type=click.File("r"), help="a script run once at first boot")
@click.option("--key", "key_name", shell_complete=complete_key, help="key pair whose public key goes into the instance")
@click.option("--tag", "tags", multiple=True, help="KEY=VALUE, repeatable")
@click.option("--wait/--no-wait", default=False, help="wait until the instance is running (progress on stderr)")
@click.option("--timeout", default=600, show_default=True, help="seconds --wait waits")
@click.pass_context
def instances_run(ctx, image, kind, itype, name, ports, user_data, key_name, tags, wait, timeout):
    """Launch an instance of IMAGE.

    \b
    pocketcloud instances run tiny --name web --port 80 --wait
    pocketcloud instances run tiny --kind vm --key mykey --port 22 --wait
    """
    payload = {"image": image, "kind": kind, "type": itype, "ports": _parse_ports(ports),
               "tags": dict(t.split("=", 1) if "=" in t else (t, "") for t in tags)}
    if name:
        payload["name"] = name
    if key_name:
        payload["key_name"] = key_name
    if user_data:
        payload["user_data"] = user_data.read()
    c = _client(ctx)
    inst = c.call("POST", "/instances", json=payload)
    if wait:
        inst = wait_for_state(ctx, c, inst, "running", timeout)
    emit(ctx, inst, INSTANCE_COLUMNS)


@instances.command("ls")
@click.option("--state", type=click.Choice(["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]))
@click.option("--kind", type=click.Choice(["container", "vm"]))
@click.option("--tag", "tags", multiple=True, help="KEY or KEY=VALUE, repeatable")
@click.option("--all", "all_accounts", is_flag=True, help="every account's instances (admin)")
@click.option("--quiet", "-q", is_flag=True, help="ids only, one a line")
@click.pass_context
def instances_ls(ctx, state, kind, tags, all_accounts, quiet):
    """List your instances (terminated ones stay listed for an hour)."""
    params = [(k, v) for k, v in (("state", state), ("kind", kind)) if v] + [("tag", t) for t in tags]
    if all_accounts:
        params.append(("all", "1"))
    data = _client(ctx).call("GET", "/instances", params=params)
    if quiet and not _json_mode(ctx):
        for i in data["instances"]:
            click.echo(i["id"])
        return
    cols = INSTANCE_COLUMNS + (["owner"] if all_accounts else [])
    emit(ctx, data, cols, key="instances", empty="no instances: `pocketcloud instances run tiny` launches one")


@instances.command("show")
@click.argument("instance_id", shell_complete=complete_instance)
@click.pass_context
def instances_show(ctx, instance_id):
    """Describe one instance."""
    _detail(ctx, _client(ctx).call("GET", f"/instances/{instance_id}"), INSTANCE_FIELDS)


@instances.command("types")
@click.pass_context
def instances_types(ctx):
    """List the instance types (EC2 names, enforced as cgroup limits or VM sizes)."""
    emit(ctx, _client(ctx).call("GET", "/instance-types"), ["name", "vcpus", "memory"], key="instance_types")


def _action(verb: str, method: str, path: str, doc: str, wait_for: str | None):
    @click.argument("instance_ids", nargs=-1, required=True, shell_complete=complete_instance)
    @click.option("--wait/--no-wait", default=False, help=f"wait until {wait_for}" if wait_for else "no effect")
    @click.option("--timeout", default=600, show_default=True)
    @click.pass_context
    def cmd(ctx, instance_ids, wait, timeout):
        c = _client(ctx)
        out, failed = [], None
        for iid in instance_ids:
            try:
                inst = c.call(method, path.format(id=iid))
                if wait and wait_for:
                    inst = wait_for_state(ctx, c, inst, wait_for, timeout)
                out.append(inst)
            except ApiError as e:  # keep going with the others; fail at the end
                failed = e
                if not _json_mode(ctx):
                    click.echo(f"{iid}: {e.message} ({e.code})", err=True)
        if _json_mode(ctx):
            _print_json(out[0] if len(instance_ids) == 1 and out else {"instances": out})
        else:
            _table(out, ["id", "name", "previous_state", "state"])
        if failed:
            _fail(ctx.find_root().obj["output"], failed)

    cmd.__doc__ = doc
    return cmd


instances.command("start")(_action("start", "POST", "/instances/{id}/start", "Start stopped instances.", "running"))
instances.command("stop")(_action("stop", "POST", "/instances/{id}/stop", "Stop running instances.", "stopped"))
instances.command("reboot")(_action("reboot", "POST", "/instances/{id}/reboot", "Reboot running instances.", None))
instances.command("rm")(_action("rm", "DELETE", "/instances/{id}", "Terminate instances (their disks go too).", None))


@instances.command("console")
@click.argument("instance_id", shell_complete=complete_instance)
@click.option("--tail", default=1000, show_default=True, help="last N lines")
@click.option("--follow", "-f", is_flag=True, help="keep printing new output (Ctrl-C to stop)")
@click.pass_context
def instances_console(ctx, instance_id, tail, follow):
    """Print the instance's console (boot) log."""
    c = _client(ctx)
    text = c.call("GET", f"/instances/{instance_id}/console", params={"tail": tail})
    if _json_mode(ctx):
        return _print_json({"instance_id": instance_id, "output": text})
    click.echo(text, nl=False)
    try:
        while follow:
            time.sleep(1)
            new = c.call("GET", f"/instances/{instance_id}/console", params={"tail": tail})
            if new.startswith(text):
                click.echo(new[len(text):], nl=False)
            else:  # the tail window moved: print the lines we have not seen
                seen = set(text.splitlines()[-50:])
                click.echo("".join(line + "\n" for line in new.splitlines()[-50:] if line not in seen), nl=False)
            text = new
    except KeyboardInterrupt:
        pass


@instances.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("instance_id", shell_complete=complete_instance)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--timeout", default=60, show_default=True, help="seconds (1-600)")
@click.pass_context
def instances_exec(ctx, instance_id, command, timeout):
    """Run COMMAND in the instance; exits with the command's exit code.

    \b
    pocketcloud instances exec i-... uname -r
    pocketcloud instances exec i-... -- sh -c 'echo $HOSTNAME'
    """
    res = _client(ctx).call("POST", f"/instances/{instance_id}/exec",
                            json={"command": list(command), "timeout": timeout})
    if _json_mode(ctx):
        _print_json(res)
    else:
        click.echo(res["stdout"], nl=False)
        click.echo(res["stderr"], nl=False, err=True)
    sys.exit(res["exit_code"])


def _keys_dir(ctx) -> Path:
    return _config(ctx).home / "keys"


@instances.command("ssh", context_settings={"ignore_unknown_options": True})
@click.argument("instance_id", shell_complete=complete_instance)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--identity", "-i", type=click.Path(dir_okay=False, path_type=Path),
              help="private key file (default: the one `keys create` saved for the instance's key pair)")
@click.option("--user", "-l", help="login user (default: the image's ssh_user, else root)")
@click.option("--print", "print_only", is_flag=True, help="print the ssh command instead of running it")
@click.pass_context
def instances_ssh(ctx, instance_id, command, identity, user, print_only):
    """SSH into an instance through its 127.0.0.1 forward of guest port 22.

    Launch it with `--port 22 --key NAME` so it has a forward and your public key.
    """
    c = _client(ctx)
    inst = c.call("GET", f"/instances/{instance_id}")
    fwd = next((p for p in inst.get("ports", []) if p.get("guest") == 22), None)
    if fwd is None:
        raise LocalError(f"instance {instance_id} has no forward for guest port 22; launch one with "
                         "`pocketcloud instances run IMAGE --port 22 --key NAME`")
    if inst["state"] != "running":
        raise ApiError(409, "IncorrectInstanceState", f"instance {instance_id} is {inst['state']}, not running")
    if identity is None:
        if not inst.get("key_name"):
            raise LocalError(f"instance {instance_id} was launched without a key pair; pass --identity FILE "
                             "or launch with --key NAME")
        identity = _keys_dir(ctx) / f"{inst['key_name']}.pem"
        if not identity.exists():
            raise LocalError(f"no private key for key pair {inst['key_name']!r} at {identity}; pass --identity FILE")
    elif not identity.exists():
        raise LocalError(f"identity file {identity} does not exist")
    if user is None:
        user = "root"
        try:
            img = next((i for i in c.call("GET", "/images")["images"] if i["name"] == inst["image"]), None)
            user = ((img or {}).get("kinds", {}).get(inst["kind"]) or {}).get("ssh_user") or "root"
        except ApiError:
            pass
    host = fwd.get("host_ip") or "127.0.0.1"
    if host in ("127.0.0.1", "0.0.0.0") and c.host not in ("127.0.0.1", "localhost", "::1"):
        _note(ctx, f"note: the forward listens on {host} of the server host {c.host}; "
                   "from another machine, tunnel to it (ssh -L) first")
    argv = ["ssh", "-i", str(identity), "-p", str(fwd["host"]), "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            f"{user}@{host}", *command]
    if print_only:
        if _json_mode(ctx):
            return _print_json({"argv": argv, "host": host, "port": fwd["host"], "user": user,
                                "identity": str(identity)})
        return click.echo(shlex.join(argv))
    ssh = shutil.which("ssh")
    if ssh is None:
        raise LocalError("no `ssh` on PATH: install openssh-client")
    sys.stdout.flush()
    os.execv(ssh, argv)


# -- explain -----------------------------------------------------------------------------
@main.command()
@click.argument("instance_id", shell_complete=complete_instance)
@click.pass_context
def explain(ctx, instance_id):
    """Show what really runs behind an instance: the layers from your app to the host kernel."""
    data = _client(ctx).call("GET", f"/instances/{instance_id}/internals")
    if _json_mode(ctx):
        return _print_json(data)
    from .web.layers import layers

    from rich.markup import escape

    con = _console()
    con.print(f"[bold]{data['instance_id']}[/] ({data['kind']}, {data['type']['name']}: "
              f"{data['type']['vcpus']} vCPU, {data['type']['memory_mib']} MiB) - {escape(data.get('isolation', ''))}")
    for i, layer in enumerate(layers(data)):
        arrow = "   " if i == 0 else " ->"
        con.print(f"{arrow} [bold cyan]{escape(layer['title'])}[/]  {escape(layer.get('subtitle', ''))}")
        for k, v in layer.get("facts", []):
            con.print(f"      [dim]{escape(k)}:[/] {escape(str(v))}")
    con.print(f"[dim](read live in {data.get('read_in_ms')} ms)[/]")


@main.command()
@click.argument("first", shell_complete=complete_instance)
@click.argument("second", shell_complete=complete_instance)
@click.pass_context
def compare(ctx, first, second):
    """Set two running instances side by side (typically a VM and a container of the same image).

    The same probes run inside both (kernel, PID 1, processes, a CPU loop, memory beyond the
    type's limit) next to what the host sees of each (its PID, its memory).
    """
    from . import lab

    c = _client(ctx)
    rows = []
    for iid in (first, second):
        _note(ctx, f"probing {iid} ...")
        rows.append(lab.measure(c, iid))
    if _json_mode(ctx):
        return _print_json({"instances": rows})
    table = lab.table(rows[0], rows[1])
    table[0] = ["", f"{rows[0]['kind']} {rows[0]['id']}", f"{rows[1]['kind']} {rows[1]['id']}"]
    click.echo("\n".join(line.rstrip() for line in lab.render(table).splitlines()))


@main.group()
def lab():
    """Teaching labs that drive the public API like any student script."""


def _need_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise LocalError("the labs draw charts with matplotlib: pip install 'pocketcloud[labs]' "
                         "(or pip install matplotlib)") from None


@lab.command("isolation")
@click.option("--image", default="tiny", show_default=True)
@click.option("--type", "itype", default="t2.nano", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("lab-isolation"),
              show_default=True, help="where the report, JSON and chart go")
@click.pass_context
def lab_isolation(ctx, image, itype, out):
    """Launch IMAGE once as a VM and once as a container, probe both, write a report."""
    from . import lab as labs

    _need_matplotlib()
    res = labs.isolation(_client(ctx), out, itype=itype, image=image, progress=lambda m: _note(ctx, m))
    if _json_mode(ctx):
        return _print_json(res)
    click.echo(labs.render(res["table"]))
    _note(ctx, f"report: {res['report']}  chart: {res['chart']}")


@lab.command("density")
@click.option("--count", default=5, show_default=True, help="instances of each kind")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(["container", "vm"]),
              help="repeatable; default both")
@click.option("--image", default="tiny", show_default=True)
@click.option("--type", "itype", default="t2.nano", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("lab-density"),
              show_default=True)
@click.pass_context
def lab_density(ctx, count, kinds, image, itype, out):
    """Start COUNT instances of each kind one by one, reading host memory after each."""
    from . import lab as labs

    _need_matplotlib()
    res = labs.density(_client(ctx), out, count, itype=itype, image=image, kinds=tuple(kinds) or ("container", "vm"),
                       progress=lambda m: _note(ctx, m))
    if _json_mode(ctx):
        return _print_json(res)
    for kind, pts in res["series"].items():
        click.echo(f"{kind:10} " + "  ".join(f"{n}:+{mib:.0f}MiB" for n, mib in pts[1:]))
    _note(ctx, f"chart: {res['chart']}")


# -- keys --------------------------------------------------------------------------------
@main.group()
def keys():
    """SSH key pairs: the public half goes into instances launched with --key."""


KEY_COLUMNS = ["name", "type", "fingerprint", "created_at"]


def _write_private_key(path: Path, text: str, force: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise LocalError(f"{path} already exists; pass --out FILE or --force") from None
    with os.fdopen(fd, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.chmod(path, 0o600)


@keys.command("create")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="where to save the private key (default ~/.pocketcloud/keys/NAME.pem), mode 0600")
@click.option("--force", is_flag=True, help="overwrite --out if it exists")
@click.pass_context
def keys_create(ctx, name, out, force):
    """Create a key pair; the private key is saved once, to a 0600 file."""
    out = out or _keys_dir(ctx) / f"{name}.pem"
    if out.exists() and not force:
        raise LocalError(f"{out} already exists; pass --out FILE or --force")
    kp = _client(ctx).call("POST", "/keys", json={"name": name})
    private = kp.pop("private_key")
    _write_private_key(out, private, force=True)
    kp["private_key_file"] = str(out)
    emit(ctx, kp, KEY_COLUMNS + ["private_key_file"])
    _note(ctx, f"private key saved to {out} (it is not stored by the server: keep it)")


@keys.command("import")
@click.argument("name")
@click.argument("public_key_file", type=click.File("r"), default=None, required=False)
@click.pass_context
def keys_import(ctx, name, public_key_file):
    """Import your own public key (default ~/.ssh/id_ed25519.pub or id_rsa.pub)."""
    if public_key_file is None:
        for cand in ("~/.ssh/id_ed25519.pub", "~/.ssh/id_ecdsa.pub", "~/.ssh/id_rsa.pub"):
            p = Path(cand).expanduser()
            if p.exists():
                text = p.read_text()
                break
        else:
            raise LocalError("no PUBLIC_KEY_FILE given and none in ~/.ssh; create one with `ssh-keygen -t ed25519`")
    else:
        text = public_key_file.read()
    emit(ctx, _client(ctx).call("POST", "/keys", json={"name": name, "public_key": text.strip()}), KEY_COLUMNS)


@keys.command("ls")
@click.pass_context
def keys_ls(ctx):
    """List your key pairs."""
    emit(ctx, _client(ctx).call("GET", "/keys"), KEY_COLUMNS, key="keys",
         empty="no key pairs: `pocketcloud keys create NAME`")


@keys.command("rm")
@click.argument("name", shell_complete=complete_key)
@click.pass_context
def keys_rm(ctx, name):
    """Delete a key pair (instances launched with it keep the public key)."""
    _client(ctx).call("DELETE", f"/keys/{name}")
    if _json_mode(ctx):
        _print_json({"name": name, "deleted": True})
    else:
        click.echo(f"deleted key pair {name}", err=True)


# -- accounts ----------------------------------------------------------------------------
@main.group()
def accounts():
    """Accounts, their keys and quotas (admin)."""


ACCOUNT_COLUMNS = ["id", "name", "role", "max_instances", "storage_quota"]


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
    acct = _client(ctx).call("POST", "/accounts", json=payload)
    if _json_mode(ctx):
        return _print_json(acct)
    _detail(ctx, acct, [("id", "id"), ("name", "name"), ("role", "role"), ("max instances", "max_instances"),
                        ("access key id", "access_key_id"), ("secret", "secret_access_key")])
    _note(ctx, "the secret is shown only now; give it to the account's owner:\n"
               f"  export AWS_ACCESS_KEY_ID={acct['access_key_id']} AWS_SECRET_ACCESS_KEY={acct['secret_access_key']}")


@accounts.command("ls")
@click.pass_context
def accounts_ls(ctx):
    """List accounts (an ordinary user sees only itself)."""
    emit(ctx, _client(ctx).call("GET", "/accounts"), ACCOUNT_COLUMNS, key="accounts")


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
    c = _client(ctx)
    if max_instances is None and storage is None:
        acct = c.call("GET", f"/accounts/{name}")
    else:
        payload = {}
        if max_instances is not None:
            payload["max_instances"] = max_instances
        if storage is not None:
            payload["storage_quota"] = parse_size(storage)
        acct = c.call("PATCH", f"/accounts/{name}", json=payload)
    _detail(ctx, acct, [("name", "name"), ("role", "role"), ("max instances", "max_instances"),
                        ("instances", "instances"), ("storage quota", "storage_quota")])


# -- buckets -----------------------------------------------------------------------------
@main.group()
def buckets():
    """S3 buckets: make, list, copy to and from, share, presign (REST /api/v1/buckets).

    The same buckets answer `aws s3` and boto3 on the same endpoint.
    """


def _storage_call(ctx, method: str, path: str, **kw):
    """A /buckets call; a cloud without object storage gets one clear message."""
    try:
        return _client(ctx).call(method, path, **kw)
    except ApiError as e:
        raise _storage_error(e) from None


def _storage_error(e: ApiError) -> ApiError:
    if e.code == "NotImplemented" or (e.status == 404 and e.code == "NotFound" and "no such endpoint" in e.message):
        return ApiError(501, "NotImplemented", "this pocketcloud has no object storage (yet): "
                                               "`pocketcloud status` shows the storage engine")
    return e


def _bucket_target(value: str) -> tuple[str, str]:
    """s3://BUCKET/KEY or BUCKET[/KEY] -> (bucket, key)."""
    bucket, _, key = value.removeprefix("s3://").partition("/")
    if not bucket:
        raise click.BadParameter(f"{value!r}: use s3://BUCKET/KEY")
    return bucket, key


BUCKET_COLUMNS = ["name", "access", "yours", "objects", "size", "created_at"]
CELLS.update({
    "yours": lambda r: "owner" if r.get("owned", True) else f"shared ({r.get('my_access')})",
    "objects": lambda r: (r.get("usage") or {}).get("objects"),
})
_size_cell = CELLS["size"]
CELLS["size"] = lambda r: (_size((r.get("usage") or {}).get("bytes")) if "usage" in r else
                           r["size"] if isinstance(r.get("size"), str) else _size_cell(r))


@buckets.command("mb")
@click.argument("name")
@click.option("--public", is_flag=True, help="anyone may read its objects (public-read)")
@click.pass_context
def buckets_mb(ctx, name, public):
    """Make a bucket (names are global, as in S3)."""
    b = _storage_call(ctx, "POST", "/buckets", json={"name": _bucket_target(name)[0],
                                                       "access": "public-read" if public else "private"})
    emit(ctx, b, BUCKET_COLUMNS)


@buckets.command("ls")
@click.argument("target", required=False)
@click.option("--recursive", "-r", is_flag=True, help="list every key, not just one level")
@click.pass_context
def buckets_ls(ctx, target, recursive):
    """List your buckets (own and shared), or the objects in s3://BUCKET[/PREFIX]."""
    if not target:
        return emit(ctx, _storage_call(ctx, "GET", "/buckets"), BUCKET_COLUMNS, key="buckets",
                    empty="no buckets: `pocketcloud buckets mb NAME`")
    bucket, prefix = _bucket_target(target)
    objects, prefixes, token = [], [], None
    while True:
        params = {"prefix": prefix, **({} if recursive else {"delimiter": "/"}), **({"token": token} if token else {})}
        page = _storage_call(ctx, "GET", f"/buckets/{bucket}/objects", params=params)
        objects += page["objects"]
        prefixes += page.get("prefixes") or []
        token = page.get("next_token")
        if not token:
            break
    if _json_mode(ctx):
        return _print_json({"bucket": bucket, "prefix": prefix, "prefixes": prefixes, "objects": objects})
    rows = [{"key": p, "size": None, "last_modified": "PRE"} for p in prefixes] + \
           [{"key": o["key"], "size": _size(o["size"]), "last_modified": o.get("last_modified")} for o in objects]
    _table(rows, ["key", "size", "last_modified"], empty=f"s3://{bucket}/{prefix} is empty")


@buckets.command("rb")
@click.argument("name")
@click.option("--force", is_flag=True, help="delete its objects too")
@click.pass_context
def buckets_rb(ctx, name, force):
    """Remove a bucket (it must be empty unless --force)."""
    bucket = _bucket_target(name)[0]
    _storage_call(ctx, "DELETE", f"/buckets/{bucket}", params={"force": "true"} if force else {})
    if _json_mode(ctx):
        _print_json({"name": bucket, "deleted": True})
    else:
        click.echo(f"deleted bucket {bucket}", err=True)


class _Progress:
    """A rich progress bar on a terminal (stderr), nothing otherwise."""

    def __init__(self, ctx, label: str, total: int | None):
        self.bar = None
        if sys.stderr.isatty() and not _json_mode(ctx):
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), console=_console(stderr=True), transient=True)
            self.task = self.bar.add_task(label, total=total)
            self.bar.start()

    def advance(self, n: int) -> None:
        if self.bar:
            self.bar.update(self.task, advance=n)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


class _UploadBody:
    """A file for requests: known length (so Content-Length is sent), progress as it is read."""

    def __init__(self, f, length: int, progress: _Progress):
        self.f, self.length, self.progress = f, length, progress

    def __len__(self) -> int:
        return self.length

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n if n and n > 0 else 1 << 20)
        self.progress.advance(len(data))
        return data


@buckets.command("cp")
@click.argument("src")
@click.argument("dst")
@click.pass_context
def buckets_cp(ctx, src, dst):
    """Copy a file to or from a bucket.

    \b
    pocketcloud buckets cp notes.txt s3://my-bucket/          (key = file name)
    pocketcloud buckets cp notes.txt s3://my-bucket/docs/n.txt
    pocketcloud buckets cp s3://my-bucket/docs/n.txt ./n.txt    (- for stdout)
    """
    up, down = dst.startswith("s3://"), src.startswith("s3://")
    if up == down:
        raise LocalError("exactly one side must be s3://BUCKET/KEY (copy between buckets: download, then upload)")
    c = _client(ctx)
    started = time.monotonic()
    if up:
        bucket, key = _bucket_target(dst)
        if src == "-":
            data = sys.stdin.buffer.read()
            if not key or key.endswith("/"):
                raise LocalError("from stdin, give the full key: s3://BUCKET/KEY")
            try:
                res = c.call("PUT", f"/buckets/{bucket}/objects/{key}", data=data)
            except ApiError as e:
                raise _storage_error(e) from None
        else:
            path = Path(src)
            if not path.is_file():
                raise LocalError(f"{src} is not a file")
            if not key or key.endswith("/"):
                key += path.name
            size = path.stat().st_size
            prog = _Progress(ctx, f"upload {path.name}", size)
            try:
                with open(path, "rb") as f:
                    res = c.call("PUT", f"/buckets/{bucket}/objects/{key}", data=_UploadBody(f, size, prog),
                                 headers={"Content-Type": "application/octet-stream"})
            except ApiError as e:
                raise _storage_error(e) from None
            finally:
                prog.close()
        result = {"source": src, "destination": f"s3://{bucket}/{key}", "bytes": res.get("size"),
                  "etag": res.get("etag")}
    else:
        bucket, key = _bucket_target(src)
        if not key:
            raise LocalError("give the object: s3://BUCKET/KEY")
        try:
            r = c.request("GET", f"/buckets/{bucket}/objects/{key}", stream=True)
        except ApiError as e:
            raise _storage_error(e) from None
        total = int(r.headers.get("Content-Length") or 0) or None
        written = 0
        if dst == "-":
            for chunk in r.iter_content(1 << 20):
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return
        path = Path(dst)
        if path.is_dir() or dst.endswith("/"):
            path = path / Path(key).name
        prog = _Progress(ctx, f"download {Path(key).name}", total)
        tmp = path.with_name(path.name + ".part")
        try:
            with open(tmp, "wb") as f:
                for chunk in r.iter_content(1 << 20):
                    f.write(chunk)
                    written += len(chunk)
                    prog.advance(len(chunk))
            if total is not None and written != total:
                raise ApiError(502, "IncompleteBody", f"got {written} of {total} bytes; try again")
            tmp.replace(path)
        finally:
            prog.close()
            tmp.unlink(missing_ok=True)
        result = {"source": src, "destination": str(path), "bytes": written}
    result["seconds"] = round(time.monotonic() - started, 3)
    if _json_mode(ctx):
        _print_json(result)
    else:
        click.echo(f"{result['source']} -> {result['destination']} ({_size(result['bytes'])} in {result['seconds']}s)",
                   err=True)


@buckets.command("presign")
@click.argument("url")
@click.option("--expires", default=3600, show_default=True, help="seconds the link is valid (max 604800)")
@click.option("--method", type=click.Choice(["GET", "PUT"]), default="GET", show_default=True)
@click.pass_context
def buckets_presign(ctx, url, expires, method):
    """Print a time-limited URL for s3://BUCKET/KEY that works without keys (curl it)."""
    bucket, key = _bucket_target(url)
    if not key:
        raise LocalError("give the object: s3://BUCKET/KEY")
    res = _storage_call(ctx, "POST", f"/buckets/{bucket}/presign", json={"key": key, "expires": expires,
                                                                         "method": method})
    if _json_mode(ctx):
        _print_json(res)
    else:
        click.echo(res["url"])


@buckets.command("share")
@click.argument("name")
@click.option("--public/--private", default=None, help="make its objects readable by anyone, or not")
@click.option("--with", "grantee", help="account (name or id) to share with")
@click.option("--level", type=click.Choice(["read", "read-write", "none"]), default="read", show_default=True,
              help="what --with gets; none revokes")
@click.pass_context
def buckets_share(ctx, name, public, grantee, level):
    """Share a bucket: --public / --private, or --with ACCOUNT [--level read|read-write|none]."""
    if public is None and not grantee:
        raise LocalError("say how to share: --public, --private, or --with ACCOUNT [--level read|read-write|none]")
    bucket = _bucket_target(name)[0]
    b = None
    if public is not None:
        b = _storage_call(ctx, "PUT", f"/buckets/{bucket}/access",
                          json={"access": "public-read" if public else "private"})
    if grantee:
        if level == "none":
            b = _storage_call(ctx, "DELETE", f"/buckets/{bucket}/shares/{grantee}")
        else:
            b = _storage_call(ctx, "PUT", f"/buckets/{bucket}/shares/{grantee}", json={"level": level})
    if _json_mode(ctx):
        return _print_json(b)
    shares = ", ".join(f"{g.get('account_name') or g['account']}: {g['level']}" for g in b.get("grants", [])) or "nobody"
    click.echo(f"{b['name']}: {b['access']}; shared with {shares}")


def _set_output(ctx, param, value):
    if value is not None:
        ctx.find_root().obj["output"] = value
    return value


def _output_everywhere(group: click.Group) -> None:
    """`-o json` works after any subcommand too (pocketcloud instances ls -o json)."""
    for cmd in group.commands.values():
        if not any(p.name == "output" for p in cmd.params):
            cmd.params.append(click.Option(["--output", "-o"], type=click.Choice(["table", "json"]), default=None,
                                           expose_value=False, is_eager=True, callback=_set_output,
                                           help="output format (same as the global -o)"))
        if isinstance(cmd, click.Group):
            _output_everywhere(cmd)


from .cli_billing import register as _register_billing  # noqa: E402 - billing hook: bill, hygiene, lab cost
_register_billing(main, lab)
_output_everywhere(main)


if __name__ == "__main__":
    main()
