"""Output for people and for scripts: tables (rich on a terminal, plain aligned columns when
piped), `label  value` detail views, JSON as the server sent it with `-o json`, and chatter
on stderr that JSON mode silences."""
from __future__ import annotations

import json
import sys

import click

from ..text import fmt_size
from .context import json_mode


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output keeps whole lines (no wrapping at 80 columns), so `| grep` and `| awk` work.
    return Console(file=stream, width=None if stream.isatty() else 250, soft_wrap=not stream.isatty(),
                   highlight=False)


def print_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


def size(n) -> str | None:
    return None if n is None else fmt_size(n)


def _largest_kind_size(r: dict) -> str | None:
    return size(max((k.get("size") or 0) for k in r["kinds"].values()) if r.get("kinds") else r.get("size"))


def _size_cell(r: dict) -> str | None:
    """Buckets carry `usage`, images one size per kind, object listings a preformatted string."""
    if "usage" in r:
        return size((r.get("usage") or {}).get("bytes"))
    if isinstance(r.get("size"), str):
        return r["size"]
    return _largest_kind_size(r)


# Columns whose cell is computed from the row rather than read from it.
CELLS = {
    "ports": lambda r: ",".join(f"{p.get('host_ip', '127.0.0.1')}:{p['host']}->{p['guest']}"
                                for p in r.get("ports", [])),
    "kinds": lambda r: ",".join(r.get("kind_names") or list(r.get("kinds", {}))),
    "recipe": lambda r: (r.get("recipe") or {}).get("status"),
    "size": _size_cell,
    "memory": lambda r: f"{r['memory_mib']} MiB" if r.get("memory_mib") else None,
    "storage_quota": lambda r: size(r.get("storage_quota")) or "unlimited",
    "fingerprint": lambda r: r.get("fingerprint"),
    "yours": lambda r: "owner" if r.get("owned", True) else f"shared ({r.get('my_access')})",
    "objects": lambda r: (r.get("usage") or {}).get("objects"),
    # a VM's boot phases as seen so far, each with its seconds since the launch
    "boot": lambda r: ", ".join(f"{p.get('name')} {p.get('elapsed')}s" for p in (r.get("boot") or {}).get("phases", [])),
}

STATE_STYLE = {"running": "green", "pending": "yellow", "stopping": "yellow", "shutting-down": "yellow",
               "stopped": "red", "terminated": "dim"}


def cell(row: dict, col: str) -> str:
    getter = CELLS.get(col)
    value = getter(row) if getter else row.get(col)
    return "-" if value in (None, "", [], {}) else str(value)


def style(col: str, value: str) -> str:
    from rich.markup import escape

    value = escape(value)
    if col == "state" and value in STATE_STYLE:
        return f"[{STATE_STYLE[value]}]{value}[/]"
    return value


def table(rows: list[dict], columns: list[str], title: str | None = None, empty: str | None = None) -> None:
    if not rows:
        if empty:
            click.echo(empty, err=True)
        return
    if not sys.stdout.isatty():
        # Piped: plain aligned columns, no colour, no wrapping, no trailing blanks (for grep/awk/cut).
        cells = [[cell(r, c) for c in columns] for r in rows]
        heads = [c.upper() for c in columns]
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
        for row in [heads] + cells:
            click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        return
    from rich import box
    from rich.table import Table

    out = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, header_style="bold")
    for c in columns:
        out.add_column(c.upper().replace("_", " "), no_wrap=c in ("id", "ports", "name"))
    for r in rows:
        out.add_row(*[style(c, cell(r, c)) for c in columns])
    console().print(out)


def emit(ctx: click.Context, data, columns: list[str] | None = None, key: str | None = None,
         empty: str | None = None) -> None:
    """JSON as the server sent it with -o json; a table (list or one row) otherwise."""
    if json_mode(ctx) or columns is None:
        return print_json(data)
    rows = data[key] if key else [data]
    table(rows, columns, empty=empty)


def detail(ctx: click.Context, data: dict, fields: list[tuple[str, str]]) -> None:
    """One resource as `label  value` lines; times as the console shows them (tables keep
    the wire form, one token per cell, for awk)."""
    if json_mode(ctx):
        return print_json(data)
    from rich.markup import escape

    from emulator.timefmt import human_utc

    con = console()
    width = max(len(label) for label, _ in fields)
    for label, col in fields:
        if col.endswith("_at"):
            value = escape(human_utc(data.get(col)))
        else:
            value = style(col, cell(data, col)) if col in data or col in CELLS else escape("-")
        con.print(f"[bold]{label.ljust(width)}[/]  {value}")


def note(ctx: click.Context, message: str) -> None:
    """Human chatter on stderr; silent in json mode."""
    if not json_mode(ctx):
        click.echo(message, err=True)
