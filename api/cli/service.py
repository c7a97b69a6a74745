"""The cloud itself: `serve` (run it here), `env` (its admin keys as exports), `status`
(what is up, who you are) and `completion` (the shell script)."""
from __future__ import annotations

import click

from ..text import hypervisor_summary
from .client import read_credentials_file
from .context import LocalError, client_of, config_of, json_mode, tilde
from .output import console, print_json


@click.command()
@click.option("--host", help="address to bind (default 127.0.0.1)")
@click.option("--port", type=int, help="port (default 4566)")
@click.option("--console-port", type=int, help="the console's own port (POCKETCLOUD_CONSOLE_PORT, default port + 1)")
@click.option("--threads", type=int, default=32, show_default=True)
@click.pass_context
def serve(ctx, host, port, console_port, threads):
    """Run the cloud server in the foreground."""
    import socket

    from emulator.services import Cloud

    from ..server import serve as run

    config = config_of(ctx).with_(host=host, port=port, console_port=console_port)
    ctx.find_root().obj["config"] = config
    if config.console_listen_port == config.port:
        raise click.ClickException("the console needs a port of its own (it must not share the API's origin)")
    for what, number, flag in (("the API", config.port, "--port or POCKETCLOUD_PORT"),
                               ("the console", config.console_listen_port,
                                "--console-port or POCKETCLOUD_CONSOLE_PORT")):
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((config.host, number))
            except OSError as e:
                raise click.ClickException(
                    f"cannot listen on {config.host}:{number} for {what} ({e.strerror}): is pocketcloud already "
                    f"running? Stop it, or pick another port with {flag}")
    boot = Cloud(config)
    boot.bootstrap()  # create the admin and its credentials before the first request
    boot.store.close()  # gunicorn forks the worker next
    click.echo(f"pocketcloud on {config.endpoint_url}  (home {tilde(config.home)})", err=True)
    click.echo(f"console:     {config.console_url}  (an origin of its own)", err=True)
    click.echo(f'credentials: {tilde(config.credentials_path)}   use them with: eval "$(pocketcloud env)"', err=True)
    run(config, threads=threads)


@click.command()
@click.pass_context
def env(ctx):
    """Print export lines for the aws CLI and boto3: eval "$(pocketcloud env)"."""
    config = config_of(ctx)
    if not config.credentials_path.exists():
        raise LocalError(f"{config.credentials_path} does not exist yet: start the server once (make up)")
    key, secret = read_credentials_file(config.credentials_path)
    if json_mode(ctx):
        return print_json({"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret,
                           "AWS_DEFAULT_REGION": config.region, "AWS_ENDPOINT_URL": config.endpoint_url,
                           "POCKETCLOUD_CONSOLE_URL": config.console_url})
    click.echo(f"export AWS_ACCESS_KEY_ID={key}")
    click.echo(f"export AWS_SECRET_ACCESS_KEY={secret}")
    click.echo(f"export AWS_DEFAULT_REGION={config.region}")
    click.echo(f"export AWS_ENDPOINT_URL={config.endpoint_url}")
    click.echo(f"export POCKETCLOUD_CONSOLE_URL={config.console_url}")
    for line in s3_addressing_note(config):
        click.echo(f"# {line}")


def s3_addressing_note(config) -> list[str]:
    """Which S3 addressing style the tools will pick, and where virtual-hosted style works."""
    import socket

    from urllib.parse import urlsplit

    host = urlsplit(config.endpoint_url).hostname or ""
    try:
        socket.inet_aton(host)
        picked = "an IP address, so the aws CLI, boto3 and terraform use path style (ENDPOINT/BUCKET/KEY) by themselves"
    except OSError:
        picked = "a host name: clients may use virtual-hosted style (BUCKET.HOST); path style works as well"
    try:
        socket.getaddrinfo("pocketcloud-check.localhost", None)
        resolves = "this system resolves *.localhost"
    except OSError:
        resolves = "curl resolves *.localhost by itself; this system's resolver does not (add nss-myhostname)"
    domains = getattr(config, "s3_domains", ()) or ()
    vhosts = ", ".join(f"http://BUCKET.{d}:{config.port}" for d in domains)
    return [f"S3: the endpoint is {picked}.",
            f"S3: virtual-hosted style also works at {vhosts} ({resolves})." if vhosts else
            "S3: virtual-hosted style is off (POCKETCLOUD_S3_DOMAINS is empty)."]


@click.command()
@click.option("--verbose", "-v", is_flag=True, help="also the raw diagnostics behind each line (e.g. QEMU's message)")
@click.pass_context
def status(ctx, verbose):
    """Show the server, its engines, the hypervisor in use and why, and who you are."""
    from .waiting import call_with_progress

    c = client_of(ctx)
    # The first /info of a new cloud may test whether KVM works here (up to ~20 s).
    info = call_with_progress(ctx, c, "status", "asking the server (a new cloud first tests whether KVM works "
                                                "here, up to 20 s)", "GET", "/info")
    me = c.call("GET", "/accounts/me")
    if json_mode(ctx):
        return print_json({"info": info, "account": me})
    from rich.markup import escape

    con = console()
    con.print(f"pocketcloud [bold]{info['pocketcloud']}[/] at {c.endpoint} (region {info['region']}); "
              f"console at {info.get('console_url') or '-'}")
    con.print(f"signed in as [bold]{escape(me['name'])}[/] ({me['role']}, up to {me['max_instances']} instances)")
    for kind, e in info["engines"].items():
        mark = "[green]up  [/]" if e["available"] else "[red]DOWN[/]"
        con.print(f"  {kind:10} {mark} {escape(e['description'])}")
    line, diagnostic = hypervisor_summary(info.get("hypervisor") or {}, vm_up=(info["engines"].get("vm") or {})
                                          .get("available", False))
    con.print(f"  {'hypervisor':10} {escape(line)}")
    if diagnostic and verbose:
        con.print(f"  {'':10} [dim]{escape(diagnostic)}[/]")
    st = info.get("storage") or {}
    con.print(f"  {'storage':10} {st.get('engine') or '-'} ({st.get('status', '')})")
    host = info.get("host") or {}
    if host:
        con.print(f"  {'host':10} {host.get('os')} kernel {host.get('kernel')}, "
                  f"{(host.get('cpu') or {}).get('count')} CPUs{' (itself a VM)' if host.get('runs_in_vm') else ''}")


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx, shell):
    """Print the shell completion script: eval "$(pocketcloud completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    click.echo(cls(ctx.find_root().command, {}, "pocketcloud", "_POCKETCLOUD_COMPLETE").source())


COMMANDS = [serve, env, status, completion]
