"""`pocketcloud images`: the catalog (over REST) and offline builds (here, on the server's host)."""
from __future__ import annotations

import sys
import time

import click

from .client import ApiError
from .complete import complete_image
from .context import client_of, config_of, fail, json_mode, output_of
from .output import console, emit, print_json


@click.group()
def images():
    """Image catalog and offline image builds."""


@images.command("ls")
@click.pass_context
def images_ls(ctx):
    """List the images you can run."""
    emit(ctx, client_of(ctx).call("GET", "/images"), ["name", "kinds", "size", "recipe"], key="images",
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

    cloud = Cloud(config_of(ctx))
    started = time.monotonic()
    try:
        if sys.stderr.isatty() and not json_mode(ctx):
            con = console(stderr=True)
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
        fail(output_of(ctx), ApiError(400, e.code, str(e)))
    result["seconds"] = round(time.monotonic() - started, 1)
    if json_mode(ctx):
        print_json(result)
    else:
        click.echo(f"{name}: built in {result['seconds']}s ({', '.join(result['kinds'])})", err=True)


@images.command("rm")
@click.argument("name", shell_complete=complete_image)
@click.pass_context
def images_rm(ctx, name):
    """Remove an image from the catalog (admin)."""
    client_of(ctx).call("DELETE", f"/images/{name}")
    emit(ctx, {"name": name, "removed": True})
