"""`pocketcloud volumes ...`: block storage over the REST API (/api/v1/volumes); and `lab storage`
(registered on the `lab` group by `register`)."""
from __future__ import annotations

from pathlib import Path

import click

from .context import client_of, json_mode, resolve_instance
from .output import emit, note, print_json

COLUMNS = ["id", "size_gib", "zone", "state", "instance_id", "device", "root"]


def _tags(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r}: give KEY=VALUE", param_hint="--tag")
        out[key] = value
    return out


@click.group()
def volumes():
    """Volumes: disks of their own (gp3), kept when an instance goes."""


@volumes.command("ls", short_help="List your volumes, root volumes included.")
@click.pass_context
def volumes_ls(ctx):
    """List your volumes (the root volume of each live instance too)."""
    emit(ctx, client_of(ctx).call("GET", "/volumes"), COLUMNS, key="volumes",
         empty="no volumes yet: `pocketcloud volumes create --size 1`")


@volumes.command("create", short_help="Create a gp3 volume (a sparse qcow2 file).")
@click.option("--size", type=int, help="GiB (1-16384); from a snapshot: its size by default")
@click.option("--zone", help="availability zone (default: the region's first)")
@click.option("--iops", type=int, help="gp3 IOPS (3000-16000)")
@click.option("--throughput", type=int, help="gp3 MiB/s (125-1000)")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="a tag (repeatable)")
@click.option("--snapshot", help="a snapshot id: the volume starts with its data (and its size, by default)")
@click.pass_context
def volumes_create(ctx, size, zone, iops, throughput, tags, snapshot):
    """Create a gp3 volume: a sparse qcow2 file in the cloud's storage pool."""
    body = {"tags": _tags(tags)}
    body.update({k: v for k, v in (("size", size), ("zone", zone), ("iops", iops), ("throughput", throughput),
                                   ("snapshot_id", snapshot)) if v is not None})
    v = client_of(ctx).call("POST", "/volumes", json=body)
    emit(ctx, v, COLUMNS)


@volumes.command("show")
@click.argument("volume_id")
@click.pass_context
def volumes_show(ctx, volume_id):
    """One volume."""
    emit(ctx, client_of(ctx).call("GET", f"/volumes/{volume_id}"), COLUMNS + ["iops", "throughput", "snapshot_id"])


@volumes.command("grow", short_help="Grow a volume or change its IOPS/throughput.")
@click.argument("volume_id")
@click.option("--size", type=int, help="the new size in GiB (volumes only grow)")
@click.option("--iops", type=int)
@click.option("--throughput", type=int)
@click.pass_context
def volumes_grow(ctx, volume_id, size, iops, throughput):
    """Grow a volume, or change its gp3 IOPS/throughput."""
    body = {k: v for k, v in (("size", size), ("iops", iops), ("throughput", throughput)) if v is not None}
    if not body:
        raise click.UsageError("give --size, --iops or --throughput")
    emit(ctx, client_of(ctx).call("PATCH", f"/volumes/{volume_id}", json=body), COLUMNS)


@volumes.command("rm", short_help="Delete an available volume.")
@click.argument("volume_id")
@click.pass_context
def volumes_rm(ctx, volume_id):
    """Delete an available volume (its data goes with it)."""
    client_of(ctx).call("DELETE", f"/volumes/{volume_id}")
    note(ctx, f"{volume_id} deleted")


@volumes.command("internals", short_help="Open the lid: the file, qcow2 chain, device.")
@click.argument("volume_id")
@click.pass_context
def volumes_internals(ctx, volume_id):
    """What the volume is on the host: its file in the pool, the qcow2 chain, where its instance sees it."""
    data = client_of(ctx).call("GET", f"/volumes/{volume_id}/internals")
    if json_mode(ctx):
        return print_json(data)
    for line in internals_lines(data):
        click.echo(line)


def _mib(n) -> str:
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


def internals_lines(data: dict) -> list[str]:
    """Block storage from both sides: the host's file, pool and chain, then the engine's way to the
    instance and the name the instance knows it by."""
    out = [f"{data['volume_id']} ({data['state']}): {_mib(data['size_bytes'])} promised, "
           f"{_mib(data['allocated_bytes'])} written on the host (sparse)",
           "on the host:",
           f"  pool        {data['pool']} ({data['type']} {data['path']})",
           f"  file        {data['file']}"]
    for depth, link in enumerate(data["chain"]):
        out.append(f"  {'chain' if depth == 0 else '     '}       {'  ' * depth}{link['format']} {link['file']}: "
                   f"virtual {_mib(link['virtual_size'])}, allocated {_mib(link['actual_size'])}")
    att = data.get("attachment")
    if not att:
        out.append("not attached: `pocketcloud volumes attach " + data["volume_id"] + " INSTANCE`")
        return out
    eng = att.get("engine") or {}
    out.append(f"attached to {att['instance_id']} ({att['kind']}) as {att['device']}:")
    if att["kind"] == "vm":
        out += [f"  libvirt     domain {eng.get('domain', '?')}: {eng.get('format')} disk on bus {eng.get('bus')}, "
                f"target {eng.get('target')}, {eng.get('host_file')}"]
    else:
        out += [f"  export      {eng.get('export') or '-'} (pid {eng.get('export_daemon_pid') or '-'})",
                f"  loop        {eng.get('loop_device') or '-'} -> {eng.get('filesystem') or '-'} mounted at "
                f"{eng.get('host_mount') or '-'}",
                f"  into it     {eng.get('propagation', '-')}"]
    if eng.get("error"):
        out.append(f"  (the engine did not say: {eng['error']})")
    out += ["inside the instance:", f"  it sees     {att.get('guest_device') or '-'}",
            f"  find it     {eng.get('find_it_inside', '-')}"]
    return out


@volumes.command("attach", short_help="Attach a volume to an instance.")
@click.argument("volume_id")
@click.argument("instance")
@click.option("--device", default="/dev/sdf", show_default=True, help="the EC2 device name")
@click.pass_context
def volumes_attach(ctx, volume_id, instance, device):
    """Attach VOLUME_ID to INSTANCE (id or name): a VM sees a new disk, a container /volumes/<device>."""
    body = {"instance_id": resolve_instance(ctx, instance), "device": device}
    emit(ctx, client_of(ctx).call("POST", f"/volumes/{volume_id}/attach", json=body), COLUMNS + ["guest_device"])


@volumes.command("detach", short_help="Detach a volume from its instance.")
@click.argument("volume_id")
@click.pass_context
def volumes_detach(ctx, volume_id):
    """Detach VOLUME_ID (a VM's guest must release the disk; a container's mount must be unused)."""
    emit(ctx, client_of(ctx).call("POST", f"/volumes/{volume_id}/detach"), COLUMNS)


SNAPSHOT_COLUMNS = ["id", "volume_id", "volume_size_gib", "state", "stored_bytes", "description"]


@volumes.command("snapshot", short_help="Snapshot a volume, even in use.")
@click.argument("volume_id")
@click.option("--description", help="a note kept with the snapshot")
@click.pass_context
def volumes_snapshot(ctx, volume_id, description):
    """A crash-consistent point-in-time copy of VOLUME_ID, kept after the volume is deleted."""
    body = {"volume_id": volume_id, **({"description": description} if description else {})}
    emit(ctx, client_of(ctx).call("POST", "/snapshots", json=body), SNAPSHOT_COLUMNS)


@volumes.command("snapshots", short_help="List your snapshots.")
@click.pass_context
def volumes_snapshots(ctx):
    """Your snapshots (`volumes create --snapshot ID` makes a volume from one)."""
    emit(ctx, client_of(ctx).call("GET", "/snapshots"), SNAPSHOT_COLUMNS, key="snapshots",
         empty="no snapshots yet: `pocketcloud volumes snapshot VOLUME_ID`")


@volumes.command("rm-snapshot", short_help="Delete a snapshot.")
@click.argument("snapshot_id")
@click.pass_context
def volumes_rm_snapshot(ctx, snapshot_id):
    """Delete SNAPSHOT_ID (volumes made from it keep their data)."""
    client_of(ctx).call("DELETE", f"/snapshots/{snapshot_id}")
    note(ctx, f"{snapshot_id} deleted")


@click.command("storage")
@click.option("--kind", type=click.Choice(["container", "vm"]), default="container", show_default=True,
              help="the instance the volume is attached to")
@click.option("--image", default="tiny", show_default=True)
@click.option("--type", "itype", default="t2.nano", show_default=True)
@click.option("--size", "size_mib", default=64, show_default=True, help="MiB of the dataset (1-512)")
@click.option("--ops", default=100, show_default=True, help="small operations of each kind (1-1000)")
@click.option("--files", default=200, show_default=True, help="entries to list in each (1-10000)")
@click.option("--endpoint", help="the API as the instance reaches it (default: a forward the lab holds on the "
                                 "instance's gateway address to this client's endpoint)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("lab-storage"),
              show_default=True, help="where the report, JSON and chart go")
@click.pass_context
def lab_storage(ctx, kind, image, itype, size_mib, ops, files, endpoint, out):
    """A volume and a bucket from inside one instance: the same dataset written to both, throughput
    and latency, and what each can and cannot do (tried). Deletes what it made, also on Ctrl-C."""
    import signal

    from . import lab_storage as lab
    from .labs import _need_matplotlib, show_files
    from .lab import render

    if not 1 <= size_mib <= 512 or not 1 <= ops <= 1000 or not 1 <= files <= 10000:
        raise click.BadParameter("--size 1..512, --ops 1..1000, --files 1..10000")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise click.BadParameter("--endpoint is a URL: http://HOST:PORT")
    _need_matplotlib()

    def interrupted(signum, frame):  # a kill (not only Ctrl-C) runs the clean-up too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        res = lab.run(client_of(ctx), out, kind=kind, image=image, itype=itype, size_mib=size_mib, ops=ops,
                      files=files, endpoint=endpoint, progress=lambda m: note(ctx, m))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if json_mode(ctx):
        return print_json(res)
    click.echo(render(res["table"]))
    click.echo()
    click.echo(render(res["can_table"]))
    for left in res["left_behind"]:
        note(ctx, f"warning: not deleted: {left}")
    show_files(ctx, res["files"])


def register(main: click.Group, lab: click.Group) -> None:
    main.add_command(volumes)
    lab.add_command(lab_storage)
