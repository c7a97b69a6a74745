"""The `pocketcloud` group: global options, and every command group attached to it."""
from __future__ import annotations

import time
from pathlib import Path

import click

from emulator.config import Config

from . import (access_keys, accounts, billing, buckets, groups, images, instances, keys, labs, service, storage, tour,
               volumes, vpcs)
from .context import ApiGroup


@click.group(cls=ApiGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    New?      pocketcloud tour             (a container and a VM, side by side)
    Try:      pocketcloud instances run tiny --name web --port 80 --wait
              pocketcloud instances exec web uname -r
              pocketcloud explain web
    Instances can be named by id or by name wherever one is asked for.
    The server is POCKETCLOUD_ENDPOINT (or AWS_ENDPOINT_URL), default http://127.0.0.1:4566.
    """
    ctx.ensure_object(dict)
    ctx.obj["started"] = time.monotonic()
    try:
        ctx.obj["config"] = Config().with_(home=home)
    except ValueError as e:  # a POCKETCLOUD_* setting that makes no sense: say which, no traceback
        raise click.UsageError(f"bad setting in the environment: {e}") from None
    ctx.obj["output"] = output


for _cmd in [*service.COMMANDS, images.images, instances.instances, *labs.COMMANDS, keys.keys,
             accounts.accounts, access_keys.access_keys, buckets.buckets, tour.tour_command,
             vpcs.vpcs, vpcs.subnets]:
    main.add_command(_cmd)
billing.register(main, labs.lab)  # bill, hygiene, lab cost
groups.register(main, labs.lab)  # groups ..., lab cattle (issue 16)
storage.register(main, labs.lab)  # storage, lab durability
volumes.register(main, labs.lab)  # volumes ..., lab storage (issue 15)


def _set_output(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
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


_output_everywhere(main)
