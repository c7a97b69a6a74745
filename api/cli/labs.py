"""Looking inside: `explain` (the layers behind one instance), `compare` (two side by side)
and `lab` (teaching labs that drive the public API like a student's script; see lab.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import click

from .complete import complete_instance
from .context import HelpGroup, LocalError, client_of, json_mode, resolve_instance
from .output import console, note, print_json


@click.command()
@click.argument("instance", shell_complete=complete_instance)
@click.pass_context
def explain(ctx, instance):
    """Show what really runs behind an instance: the layers from your app to the host kernel."""
    data = client_of(ctx).call("GET", f"/instances/{resolve_instance(ctx, instance)}/internals")
    if json_mode(ctx):
        return print_json(data)
    from rich.markup import escape

    from ..web.layers import layers

    con = console()
    con.print(f"[bold]{data['instance_id']}[/] ({data['kind']}, {data['type']['name']}: "
              f"{data['type']['vcpus']} vCPU, {data['type']['memory_mib']} MiB) - {escape(data.get('isolation', ''))}")
    for i, layer in enumerate(layers(data)):
        arrow = "   " if i == 0 else " ->"
        con.print(f"{arrow} [bold cyan]{escape(layer['title'])}[/]  {escape(layer.get('subtitle', ''))}")
        for k, v in layer.get("facts", []):
            con.print(f"      [dim]{escape(k)}:[/] {escape(str(v))}")
    from ..web.layers import vpc_path

    for k, v in vpc_path(data.get("vpc_path")):  # VPC networking: the packet's way, with live counters
        con.print(f"   [dim]{escape(k)}:[/] {escape(v)}")
    con.print(f"[dim](read live in {data.get('read_in_ms')} ms)[/]")


@click.command()
@click.argument("first", shell_complete=complete_instance)
@click.argument("second", shell_complete=complete_instance)
@click.pass_context
def compare(ctx, first, second):
    """Set two running instances side by side, e.g. a VM and a container of one image.

    The same probes run inside both (kernel, PID 1, processes, a CPU loop, memory beyond the
    type's limit) next to what the host sees of each (its PID, its memory).
    """
    from . import lab as labs

    from .waiting import run_with_progress

    c = client_of(ctx)
    ids = (resolve_instance(ctx, first), resolve_instance(ctx, second))

    def probe(say):
        out = []
        for iid in ids:
            say(f"probing {iid} ...")
            out.append(labs.measure(c, iid))
        return out

    rows = run_with_progress(ctx, "compare", "running the same probes inside both", probe)
    if json_mode(ctx):
        return print_json({"instances": rows})
    out = labs.table(rows[0], rows[1])
    out[0] = ["", f"{rows[0]['kind']} {rows[0]['id']}", f"{rows[1]['kind']} {rows[1]['id']}"]
    click.echo("\n".join(line.rstrip() for line in labs.render(out).splitlines()))


@click.group(cls=HelpGroup)
def lab():
    """Teaching labs that drive the public API like any student script."""


def _need_matplotlib() -> None:
    from importlib.util import find_spec

    if find_spec("matplotlib") is None:
        raise LocalError("the labs draw charts with matplotlib: pip install 'pocketcloud[labs]' "
                         "(or pip install matplotlib)")


def save_lab(out: Path, data: dict, *, json_name: str, chart_name: str, report_name: str,
             chart: Callable[[Path], object], report: Callable[[str], str]) -> dict[str, str]:
    """The tail every lab shares: its chart (PNG), its report (Markdown, showing the chart by
    name, so the directory moves as one) and its data (JSON) in OUT; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out / json_name), "chart": str(out / chart_name), "report": str(out / report_name)}
    chart(out / chart_name)
    (out / report_name).write_text(report(chart_name))
    (out / json_name).write_text(json.dumps(data, indent=1, default=str))
    return files


def show_files(ctx: click.Context, files: dict[str, str], extra: str = "") -> None:
    """Where the lab's report and chart went (to stderr: stdout holds the table)."""
    note(ctx, f"report: {files['report']}  chart: {files['chart']}{extra}")


@lab.command("isolation")
@click.option("--image", default="tiny", show_default=True)
@click.option("--type", "itype", default="t2.nano", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("lab-isolation"),
              show_default=True, help="where the report, JSON and chart go")
@click.pass_context
def lab_isolation(ctx, image, itype, out):
    """Launch IMAGE once as a VM and once as a container, probe both, write a report."""
    from . import lab as labs

    from .waiting import run_with_progress

    _need_matplotlib()
    res = run_with_progress(ctx, "lab isolation", "launching and probing",
                            lambda say: labs.isolation(client_of(ctx), out, itype=itype, image=image, progress=say))
    if json_mode(ctx):
        return print_json(res)
    click.echo(labs.render(res["table"]))
    note(ctx, f"report: {res['report']}  chart: {res['chart']}")


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

    from .waiting import run_with_progress

    _need_matplotlib()
    res = run_with_progress(ctx, "lab density", "starting instances",
                            lambda say: labs.density(client_of(ctx), out, count, itype=itype, image=image,
                                                     kinds=tuple(kinds) or ("container", "vm"), progress=say))
    if json_mode(ctx):
        return print_json(res)
    for kind, pts in res["series"].items():
        click.echo(f"{kind:10} " + "  ".join(f"{n}:+{mib:.0f}MiB" for n, mib in pts[1:]))
    note(ctx, f"chart: {res['chart']}")


COMMANDS = [explain, compare, lab]
