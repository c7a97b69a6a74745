"""`pocketcloud images`: the catalog (over REST) and offline builds (here, on the server's host)."""
from __future__ import annotations

import click

from .client import ApiError
from .complete import complete_image
from .context import HelpGroup, client_of, config_of, fail, json_mode, output_of
from .output import emit, print_json
from .waiting import run_with_progress


@click.group(cls=HelpGroup)
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

    This runs here, on the server's host (it needs the recipes and the engines). Each
    step's output streams as it happens: on a terminal under a spinner with the step's
    elapsed time, piped as `[  12.3s] line` lines (at least one every 2 seconds).
    """
    import time

    from emulator.errors import CloudError
    from emulator.images import STEP
    from emulator.services import Cloud

    cloud = Cloud(config_of(ctx))
    step = "starting"

    def show(ticker, line: str) -> None:  # a step stays in bold; its output is dim, under it
        nonlocal step
        if line.startswith(STEP):
            step = line[len(STEP):]
            ticker.event(step, style="bold")
            ticker.status(step[:100])
        else:
            ticker.event(line, style="dim")
            ticker.status(f"{step[:40]}: {line[:60]}" if ticker.tty else line[:100])

    started = time.monotonic()
    try:
        result = run_with_progress(ctx, f"building {name}", step,
                                   lambda say: cloud.images.build(name, progress=say, force=force), show)
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
