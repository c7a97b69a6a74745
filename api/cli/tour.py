"""`pocketcloud tour`: the first hour in five steps. The tiny image runs as a container and
as a VM, the two are compared, then removed; every step says in one sentence what happens
and what to look at. It drives the public REST API, like any script of yours would."""
from __future__ import annotations

import sys

import click

from .. import tour
from .client import ApiError, Client
from .context import LocalError, client_of, json_mode
from .output import console, print_json
from .waiting import call_with_progress, wait_for_state


@click.command("tour")
@click.option("--image", default="tiny", show_default=True, help="the image to run both ways")
@click.option("--type", "itype", default="t2.nano", show_default=True)
@click.option("--pause/--no-pause", default=None,
              help="wait for Enter between steps (default: when you type at a terminal)")
@click.option("--keep", is_flag=True, help="leave both instances running at the end (remove them yourself)")
@click.pass_context
def tour_command(ctx, image, itype, pause, keep):
    """A first tour: one image as a container and as a VM, compared, cleaned up."""
    c = client_of(ctx)
    quiet = json_mode(ctx)
    pause = sys.stdin.isatty() and not quiet if pause is None else pause
    con = None if quiet else console()
    taken = [i for i in c.call("GET", "/instances")["instances"]
             if i["name"] in tour.NAMES.values() and i["state"] != "terminated"]
    if taken:
        raise LocalError(f"a tour is still running ({', '.join(i['name'] + ' ' + i['id'] for i in taken)}): "
                         f"`pocketcloud instances rm {' '.join(i['name'] for i in taken)}` first")

    def say(key: str, n: int) -> None:
        if quiet:
            return
        s = tour.step(key)
        con.print(f"\n[bold]{n}. {s['title']}[/]")
        con.print(f"   {s['say']}")
        con.print(f"   [cyan]Look at:[/] {s['look']}")

    def wait_enter() -> None:
        if pause:
            click.prompt("   press Enter to go on", default="", show_default=False, prompt_suffix="",
                         err=True)

    made: dict[str, dict] = {}
    result: dict = {"image": image, "type": itype, "steps": []}
    try:
        say("check", 1)
        info = call_with_progress(ctx, c, "checking", "asking the server which engines are up", "GET", "/info")
        from ..text import hypervisor_summary

        hv_line, _ = hypervisor_summary(info.get("hypervisor") or {})
        engines = {k: e["available"] for k, e in info["engines"].items()}
        if not quiet:
            for kind, up in engines.items():
                con.print(f"   {kind:10} {'up' if up else '[red]DOWN[/]'}")
            con.print(f"   hypervisor {hv_line}")
        result["steps"].append({"key": "check", "engines": engines, "hypervisor": hv_line})
        for kind, up in (("container", engines.get("container")), ("vm", engines.get("vm"))):
            if not up:
                raise ApiError(503, "ServiceUnavailable", f"the {kind} engine is down, so the tour cannot run "
                                                          "its step; `pocketcloud status` says why")
        wait_enter()
        for n, kind in ((2, "container"), (3, "vm")):
            say(kind, n)
            made[kind] = _launch(ctx, c, image, kind, itype)
            result["steps"].append({"key": kind, "instance": made[kind]})
            wait_enter()
        say("compare", 4)
        rows = tour.comparison(
            lambda iid, cmd: _exec(c, iid, cmd), lambda iid: c.call("GET", f"/instances/{iid}/internals"),
            made["container"], made["vm"], info.get("host", {}).get("kernel") or "-")
        result["steps"].append({"key": "compare", "rows": [list(r) for r in rows]})
        if not quiet:
            _print_rows(rows)
        wait_enter()
    finally:
        if made and not keep:
            say("cleanup", 5)
            for kind, inst in made.items():
                try:
                    gone = c.call("DELETE", f"/instances/{inst['id']}")
                    if not quiet:
                        con.print(f"   {inst['name']} {inst['id']}: {gone['previous_state']} -> {gone['state']}")
                except ApiError as e:
                    click.echo(f"   could not terminate {inst['id']}: {e.message}", err=True)
            result["steps"].append({"key": "cleanup", "terminated": [i["id"] for i in made.values()]})
    if quiet:
        return print_json(result)
    if keep:
        con.print(f"\nBoth still run: {', '.join(i['name'] for i in made.values())}. "
                  f"`pocketcloud instances rm {' '.join(i['name'] for i in made.values())}` removes them.")
    con.print("\n[bold]Next[/]")
    for line in tour.NEXT:
        con.print(f"   {line}")


def _launch(ctx: click.Context, c: Client, image: str, kind: str, itype: str) -> dict:
    inst = call_with_progress(ctx, c, f"launching {image} as a {kind}", "the server is starting it", "POST",
                              "/instances", json={"image": image, "kind": kind, "type": itype,
                                                  "name": tour.NAMES[kind], "tags": {"pocketcloud:tour": kind}})
    inst = wait_for_state(ctx, c, inst, "running", timeout=600)
    if kind == "vm":  # running means QEMU runs; the guest answers commands once it has booted
        _wait_exec(ctx, c, inst)
    return c.call("GET", f"/instances/{inst['id']}")


def _wait_exec(ctx: click.Context, c: Client, inst: dict, timeout: float = 300) -> None:
    import time

    from .progress import Ticker

    with Ticker(ctx, inst["id"]) as ticker:
        ticker.status("waiting for the guest to answer a command")
        while True:
            try:
                if _exec(c, inst["id"], "true", raw=True)["exit_code"] == 0:
                    return
            except ApiError as e:
                if ticker.elapsed > timeout:
                    raise ApiError(408, "WaitTimeout", f"{inst['id']} did not answer within {timeout:.0f}s "
                                                       f"({e.message})") from None
            for _ in range(5):
                time.sleep(0.2)
                ticker.tick()


def _exec(c: Client, iid: str, cmd: str, raw: bool = False):
    res = c.call("POST", f"/instances/{iid}/exec", json={"command": cmd, "timeout": 30})
    return res if raw else res["stdout"]


def _print_rows(rows: list[tuple[str, str, str]]) -> None:
    head = ("", "container", "VM")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(3)]
    for r in [head, *rows]:
        click.echo("   " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
