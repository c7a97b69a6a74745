"""`pocketcloud groups ...` (Auto Scaling groups) and `pocketcloud lab cattle`; root.py
attaches them with `register(main, lab)`."""
from __future__ import annotations

from pathlib import Path

import click

from .context import client_of, json_mode
from .labs import _need_matplotlib, show_files
from .output import emit, note, print_json

GROUP_COLUMNS = ["name", "in_service", "desired", "min", "max", "status", "zones"]
MEMBER_COLUMNS = ["id", "zone", "lifecycle", "health", "state", "template_version", "launched_at"]
ACTIVITY_COLUMNS = ["start", "status", "description", "cause"]


@click.group()
def groups():
    """Auto Scaling groups: cattle kept at their desired capacity (kill one, it comes back)."""


@groups.command("ls")
@click.pass_context
def groups_ls(ctx):
    """List your groups."""
    data = client_of(ctx).call("GET", "/groups")
    for g in data["groups"]:
        g["zones"] = ",".join(z[-1] for z in g["zones"])
    emit(ctx, data, GROUP_COLUMNS, key="groups", empty="no groups yet: `pocketcloud groups create NAME --image tiny`")


@groups.command("create", short_help="Create group NAME kept at its desired capacity.")
@click.argument("name")
@click.option("--image", default="tiny", show_default=True, help="catalog image (when no --template)")
@click.option("--kind", type=click.Choice(["container", "vm"]), default="container", show_default=True)
@click.option("--type", "itype", default="t2.nano", show_default=True)
@click.option("--user-data", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="script run at boot")
@click.option("--template", help="an existing launch template (name); default: one named NAME is made")
@click.option("--min", "min_size", type=int, default=1, show_default=True)
@click.option("--max", "max_size", type=int, default=4, show_default=True)
@click.option("--desired", type=int, help="default: --min")
@click.option("--zones", default="a,b,c", show_default=True, help="zone letters or names, comma-separated")
@click.pass_context
def groups_create(ctx, name, image, kind, itype, user_data, template, min_size, max_size, desired, zones):
    """Create group NAME (and its launch template, unless --template names one)."""
    c = client_of(ctx)
    if template is None:
        body = {"name": name, "image": image, "kind": kind, "type": itype,
                **({"user_data": user_data.read_text()} if user_data else {})}
        c.call("POST", "/launch-templates", json=body)
        template = name
        note(ctx, f"launch template {name}: {image} as a {kind}, {itype}")
    try:
        g = c.call("POST", "/groups", json={"name": name, "launch_template": {"name": template, "version": "$Latest"},
                                            "min": min_size, "max": max_size, "desired": desired,
                                            "zones": [z.strip() for z in zones.split(",") if z.strip()]})
    except Exception:
        if template == name and not ctx.params.get("template"):
            c.call("DELETE", f"/launch-templates/{name}")  # a failed create leaves nothing behind
        raise
    if json_mode(ctx):
        return print_json(g)
    click.echo(f"{g['name']}: desired {g['desired']} (min {g['min']}, max {g['max']}) in {', '.join(g['zones'])}; "
               "launching now (`pocketcloud groups show NAME`)")


@groups.command("show")
@click.argument("name")
@click.pass_context
def groups_show(ctx, name):
    """One group: its members and its latest activities."""
    g = client_of(ctx).call("GET", f"/groups/{name}")
    if json_mode(ctx):
        return print_json(g)
    cpu = g.get("cpu") or {}
    click.echo(f"{g['name']}: {g['in_service']} in service, desired {g['desired']} (min {g['min']}, max {g['max']}), "
               f"template {g['launch_template']['LaunchTemplateName']} {g['launch_template']['Version']}"
               + (f", average CPU {cpu['average']}%" if cpu.get("average") is not None else ""))
    emit(ctx, g, MEMBER_COLUMNS, key="members", empty="no members")
    g["activities"] = g["activities"][:10]
    emit(ctx, g, ACTIVITY_COLUMNS, key="activities")


@groups.command("set-desired", short_help="Change how many instances group NAME keeps.")
@click.argument("name")
@click.argument("desired", type=int)
@click.pass_context
def groups_set_desired(ctx, name, desired):
    """Set the desired capacity; the group launches or terminates to match."""
    g = client_of(ctx).call("PATCH", f"/groups/{name}", json={"desired": desired})
    if json_mode(ctx):
        return print_json(g)
    click.echo(f"{name}: desired {g['desired']} (in service now: {g['in_service']})")


@groups.command("rm", short_help="Delete group NAME and its template.")
@click.argument("name")
@click.option("--force", is_flag=True, help="terminate its instances too (else the group must be empty)")
@click.option("--keep-template", is_flag=True, help="keep the launch template named NAME")
@click.pass_context
def groups_rm(ctx, name, force, keep_template):
    """Delete group NAME (and the launch template `groups create` made for it)."""
    import time

    c = client_of(ctx)
    c.call("DELETE", f"/groups/{name}", params={"force": "true" if force else "false"})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and name in [g["name"] for g in c.call("GET", "/groups")["groups"]]:
        time.sleep(0.5)
    if not keep_template and name in [t["name"] for t in c.call("GET", "/launch-templates")["launch_templates"]]:
        c.call("DELETE", f"/launch-templates/{name}")
    note(ctx, f"deleted group {name}")


@groups.command("activities")
@click.argument("name")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def groups_activities(ctx, name, limit):
    """What the group did and why, newest first (AWS's wording)."""
    data = client_of(ctx).call("GET", f"/groups/{name}/activities", params={"limit": limit})
    emit(ctx, data, ACTIVITY_COLUMNS, key="activities", empty="no activity yet")


@click.command("cattle")
@click.option("--kind", type=click.Choice(["container", "vm"]), default="container", show_default=True)
@click.option("--image", default="tiny", show_default=True)
@click.option("--type", "itype", default="t2.nano", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("lab-cattle"), show_default=True)
@click.pass_context
def lab_cattle(ctx, kind, image, itype, out):
    """Pets vs cattle: kill a pet and one of three cattle behind pocketcloud's back; the group
    replaces its member, the pet stays dead. Timeline, PNG chart, Markdown report."""
    from . import lab_cattle as labs

    _need_matplotlib()
    res = labs.cattle(client_of(ctx), out, kind=kind, image=image, itype=itype, progress=lambda m: note(ctx, m))
    if json_mode(ctx):
        return print_json({k: v for k, v in res.items() if k != "samples"})
    tl = res["timeline"]
    click.echo(f"cattle {res['victim']}: detected after {tl['cattle_detected_s']}s, replacement "
               f"{tl['replacement']} running after {tl['replacement_running_s']}s")
    click.echo(f"pet {res['pet']}: seen down after {tl['pet_seen_down_s']}s and stays dead: "
               f"{res['pet_explained']['why']}")
    show_files(ctx, res)


def register(main: click.Group, lab: click.Group) -> None:
    main.add_command(groups)
    lab.add_command(lab_cattle)
