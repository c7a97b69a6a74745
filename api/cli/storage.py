"""`pocketcloud storage`: the S3 engine's machinery (admins). On Ceph: the cluster's health,
hosts and daemons over REST; machines added or removed here, on the cloud's host, with
Ceph's own tools over SSH (your ssh, your keys: the server never holds SSH credentials).
Also `lab durability` (registered on the `lab` group)."""
from __future__ import annotations

import time
from pathlib import Path

import click

from .client import ApiError
from .context import client_of, config_of, fail, json_mode, output_of
from .output import console, note, print_json, size, table


@click.group()
def storage():
    """The S3 engine's machinery: Ceph's health, hosts, daemons; add or remove machines (admin)."""


def _cluster_call(ctx: click.Context, method: str, path: str, **kw):
    """A /storage call; on an engine without a cluster, the refusal says how to get Ceph."""
    from .lab_durability import explain_refusal

    try:
        return client_of(ctx).call(method, path, **kw)
    except ApiError as e:
        raise explain_refusal(e) from None


@storage.command("status", short_help="Cluster health, OSDs, placement groups, daemons.")
@click.pass_context
def storage_status(ctx):
    """Health (and why), serving ok/degraded/unavailable, OSDs up/in, PG states, daemons."""
    info = _cluster_call(ctx, "GET", "/storage/cluster")
    if json_mode(ctx):
        return print_json(info)
    con = console()
    con.print(f"[bold]Ceph {info.get('version')}[/] cluster {info.get('fsid')}, monitor {info.get('mon')}")
    con.print(f"health   {info['health']}  {info.get('health_reason') or ''}".rstrip(), markup=False)
    con.print(f"serving  {info['serving']}", markup=False)
    o = info["osds"]
    con.print(f"OSDs     {o['up']} up, {o['in']} in, of {o['total']}"
              + (f"  (down: {', '.join(o['down'])})" if o.get("down") else ""), markup=False)
    states = ", ".join(f"{n} {s}" for s, n in sorted(info["pgs"]["states"].items(), key=lambda kv: -kv[1]))
    con.print(f"PGs      {info['pgs']['total']}: {states}", markup=False)
    u = info.get("usage") or {}
    con.print(f"usage    {u.get('objects', 0)} RADOS objects, {size(u.get('bytes_used', 0))} used of "
              f"{size(u.get('bytes_total', 0))}", markup=False)
    rows = [{"daemon": n, **d} for n, d in info.get("daemons", {}).items()]
    table(rows, ["daemon", "state", "pid", "restarts", "last_exit"])
    _hosts_table(info.get("hosts", []))


def _hosts_table(hosts: list[dict]) -> None:
    rows = [{"host": h["name"], "role": h.get("role"), "address": h.get("address"),
             "osds": " ".join(f"osd.{o['id']}:{o['status']}{'' if o['in'] else '/out'}" for o in h["osds"]),
             "data_dir": h.get("data_dir"), "ssh": h.get("ssh")} for h in hosts]
    table(rows, ["host", "role", "address", "osds", "data_dir", "ssh"])


@storage.command("hosts", short_help="The cluster's machines and their OSDs.")
@click.pass_context
def storage_hosts(ctx):
    """The cluster's machines, each with its OSDs (up/down, in/out), address and data directory."""
    hosts = _cluster_call(ctx, "GET", "/storage/hosts")
    if json_mode(ctx):
        return print_json(hosts)
    _hosts_table(hosts["hosts"])


@storage.command("kill", short_help="SIGKILL one daemon, held down until release.")
@click.argument("daemon")
@click.option("--no-hold", is_flag=True, help="let the supervisor restart it at once")
@click.pass_context
def storage_kill(ctx, daemon, no_hold):
    """SIGKILL one daemon of this host (osd.N, mon.a, mgr.x, rgw); held down until `release`."""
    out = _cluster_call(ctx, "POST", f"/storage/daemons/{daemon}/kill", json={"hold": not no_hold})
    if json_mode(ctx):
        return print_json(out)
    click.echo(f"{daemon}: {'killed (pid ' + str(out['pid']) + ')' if out['pid'] else 'was not running'}"
               f"{'; held down until `pocketcloud storage release ' + daemon + '`' if out['held'] else ''}")


@storage.command("release", short_help="Let the supervisor restart a held daemon.")
@click.argument("daemon")
@click.pass_context
def storage_release(ctx, daemon):
    """Let the supervisor restart a held daemon."""
    out = _cluster_call(ctx, "POST", f"/storage/daemons/{daemon}/release")
    if json_mode(ctx):
        return print_json(out)
    click.echo(f"{daemon}: released; the supervisor restarts it within seconds")


def _local(ctx: click.Context, fn):
    """Run `fn(cluster, progress)` on this home's cluster, here; emulator errors end the
    command like API errors do."""
    from emulator.errors import CloudError
    from emulator.storage.ceph import CephCluster
    from emulator.storage.choice import ceph_root

    from ..errors import status_for

    started = time.monotonic()
    cluster = CephCluster(ceph_root(config_of(ctx)))
    try:
        return fn(cluster, lambda line: note(ctx, line))
    except CloudError as e:
        fail(output_of(ctx), ApiError(status_for(e, "rest"), e.code, str(e)))
    finally:
        note(ctx, f"({time.monotonic() - started:.1f} s)")


@storage.command("add-host", short_help="Add OSDs on another machine (over ssh).")
@click.argument("target")
@click.option("--address", required=True, help="the other machine's address, reachable from this one (and back)")
@click.option("--name", help="its CRUSH host name (default: its short host name)")
@click.option("--osds", default=1, show_default=True, help="OSDs to create there")
@click.option("--osd-size", type=int, help="bytes per OSD block file (sparse); default the cluster's")
@click.option("--data-dir", help="where its OSDs live there (default /var/lib/pocketcloud-ceph/FSID)")
@click.option("--identity", "-i", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="ssh private key")
@click.option("--port", "-p", type=int, help="ssh port")
@click.option("--ssh-config", "-F", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="ssh config file")
@click.pass_context
def storage_add_host(ctx, target, address, name, osds, osd_size, data_dir, identity, port, ssh_config):
    """Add OSDs on the machine TARGET (USER@HOST, reached with ssh) to this home's Ceph cluster.

    \b
    Runs here, on the cloud's host (it uses this home's admin keyring and your ssh). The other
    machine needs `apt-get install ceph-osd` and an SSH login that may run it (root). The
    cluster must have been made for more than one machine (POCKETCLOUD_CEPH_ADDRESS).
    Keyrings travel on ssh's stdin, never on a command line.
    """
    from emulator.storage.ceph.hosts import Ssh, add_host

    def go(cluster, progress):
        ssh = Ssh(target, port=port, identity=str(identity.resolve()) if identity else None,
                  config=str(ssh_config.resolve()) if ssh_config else None)
        return add_host(cluster, ssh, address=address, name=name, osds=osds, osd_size=osd_size, data_dir=data_dir,
                        progress=progress)

    rec = _local(ctx, go)
    if json_mode(ctx):
        return print_json(rec)
    ids = ", ".join(f"osd.{o['id']}" for o in rec["osds"])
    click.echo(f"{rec['name']} ({rec['address']}) joined with {ids} in {rec['seconds']} s: "
               + ", ".join(f"{k} {v} s" for k, v in rec["timings"].items()))
    click.echo("`pocketcloud storage hosts` shows it; `pocketcloud buckets explain s3://BUCKET/KEY` where objects are")


@storage.command("remove-host", short_help="Take an added machine's OSDs out and purge them.")
@click.argument("name")
@click.option("--force", is_flag=True, help="even if it leaves data short of replicas, or the machine is unreachable")
@click.pass_context
def storage_remove_host(ctx, name, force):
    """Take an added machine's OSDs out, stop them there, purge them, remove their files there."""
    from emulator.storage.ceph.hosts import remove_host

    out = _local(ctx, lambda cluster, progress: remove_host(cluster, name, force=force, progress=progress))
    if json_mode(ctx):
        return print_json(out)
    click.echo(f"{name} removed (osd.{', osd.'.join(map(str, out['osds']))}) in {out['seconds']} s"
               + (f"; problems: {'; '.join(out['problems'])}" if out["problems"] else ""))


@storage.command("start-host", short_help="Start an added machine's OSDs again.")
@click.argument("name")
@click.pass_context
def storage_start_host(ctx, name):
    """Start an added machine's OSDs again (after it rebooted); running ones are left alone."""
    from emulator.storage.ceph.hosts import start_host

    out = _local(ctx, lambda cluster, progress: start_host(cluster, name, progress=progress))
    if json_mode(ctx):
        return print_json(out)
    click.echo(f"{name}: osd.{', osd.'.join(map(str, out['osds']))} up ({out['seconds']} s)")


@click.command("durability")
@click.option("--objects", default=50, show_default=True, help="objects to write")
@click.option("--size", "obj_size", default=64 * 1024, show_default=True, help="bytes per object")
@click.option("--osd", help="the OSD to kill (default: the primary of the first object's PG)")
@click.option("--timeout", default=240.0, show_default=True, help="seconds each wait may take")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("lab-durability"),
              show_default=True, help="where the report, JSON and chart go")
@click.pass_context
def lab_durability(ctx, objects, obj_size, osd, timeout, out):
    """Kill one Ceph OSD under live objects: degraded yet serving, then recovery (Ceph engine, admin)."""
    from . import lab_durability as lab
    from .labs import _need_matplotlib, show_files

    if not 1 <= objects <= 10000 or not 1 <= obj_size <= 64 << 20:
        raise click.BadParameter("--objects 1..10000 and --size 1..67108864")
    _need_matplotlib()
    started = time.monotonic()
    res = lab.run(client_of(ctx), out, objects=objects, size=obj_size, osd=osd, timeout=timeout,
                  progress=lambda m: note(ctx, m))
    if json_mode(ctx):
        return print_json(res)
    table([{"t_s": t, "event": e} for t, e in lab.timeline(res)], ["t_s", "event"])
    click.echo()
    table([{"fact": k, "value": v} for k, v in lab.summary(res)], ["fact", "value"])
    show_files(ctx, res["files"], f"  ({time.monotonic() - started:.0f} s)")


def register(main: click.Group, lab: click.Group) -> None:
    main.add_command(storage)
    lab.add_command(lab_durability)


def render_internals(data: dict) -> None:
    """`buckets explain`: a bucket's engine and, with a key, where that object's bytes are."""
    con = console()
    engine = data["engine"]
    say = lambda text: con.print(text, markup=False, highlight=False)  # noqa: E731
    say(f"bucket {data['bucket']} (owner {data['owner']}, {data['access']}): {data['usage'].get('objects', 0)} "
        f"objects, {size(data['usage'].get('bytes', 0))}")
    say(f"engine {engine.get('name')} at {engine.get('endpoint')}")
    ceph = data.get("ceph")
    if ceph:
        say(f"cluster {ceph['fsid']}: {ceph['health']} {ceph.get('health_reason') or ''}; serving {ceph['serving']}; "
            f"OSDs {ceph['osds']['up']} up / {ceph['osds']['in']} in / {ceph['osds']['total']}; "
            f"{ceph['pgs']['total']} PGs")
        say(f"RGW bucket marker {ceph['bucket_marker']}, pool {ceph['pool']}: {ceph['rados_objects']} RADOS objects")
        say(ceph["how"])
    obj = data.get("object")
    if obj is None:
        on_host = data.get("bytes_on_host") or {}
        say(f"on this host: {on_host.get('path')} - {on_host.get('note')}")
        return
    if ceph:
        say(f"object {obj['key']}: RADOS object {obj['object']} in pool {obj['pool']}, "
            f"{'exists' if obj['exists'] else 'does not exist (placement is computed from the name alone)'}"
            + (f", head {size(obj['size'])}" if obj.get("size") is not None else ""))
        say(f"placement group {obj['pg']}: acting OSDs {obj['acting']} (primary osd.{obj['primary']})")
        table([{"osd": f"osd.{r['osd']}", "role": "primary" if r["osd"] == obj["primary"] else "replica",
                "host": r.get("host"), "file": r.get("host_path")} for r in obj["replicas"]],
              ["osd", "role", "host", "file"])
        say("BlueStore keeps objects inside each OSD's block file, not as files of their own")
    else:
        say(f"object {obj['key']}: {obj.get('host_path') or 'not on this host'} "
            f"({'exists' if obj['exists'] else 'does not exist'}) - {obj.get('note')}")
