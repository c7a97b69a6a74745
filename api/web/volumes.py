"""Console pages for volumes (block storage, issue 15): the list with its attachments, create
(blank or from a snapshot), attach to one of my instances, detach, snapshot, delete; the
snapshots below; and one page per volume with its internals (host file, chain, the engine's
way to the instance).

The routes join the console's blueprint (same sign-in, CSRF, error pages and flash messages
for refused actions): api/web/__init__.py imports this module before registering it. Every
action is one call of the same Cloud methods the REST API and EC2 use, so another account's
volume is a 404 here too."""
from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for

from emulator.errors import CloudError, InvalidParameter, NotFound
from emulator.vpcs import ZONES

from ..rest_volumes import _render, snapshot_dict
from .hints import next_step
from .views import action, bp, cloud

ATTACHABLE = ("running", "stopped")


def _gib(raw: str, what: str = "size") -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdecimal():
        raise InvalidParameter(f"{what} must be a whole number of GiB, got {raw[:20]!r}")
    return int(raw)


def _back() -> str:
    return url_for("web.volumes")


@bp.get("/volumes")
def volumes():
    c = cloud()
    vols = _render(c.describe_volumes(g.account))
    snaps = c.describe_snapshots(g.account)
    tags = c.resource_tags.of(g.account.id, [s.id for s in snaps])
    instances = [i.to_dict() for i in c.describe_instances(g.account) if i.state in ATTACHABLE]
    return render_template("volumes.html", volumes=vols, instances=instances,
                           snapshots=[snapshot_dict(s, tags.get(s.id, {})) for s in snaps],
                           zones=[c.config.region + z for z in ZONES])


@bp.post("/volumes")
@action
def volume_create():
    f, c = request.form, cloud()
    v = c.create_volume(g.account, snapshot_id=f.get("snapshot_id") or None,
                        zone=f.get("zone") or c.config.region + ZONES[0], size_gib=_gib(f.get("size", "")),
                        volume_type="gp3")
    flash(f"Created volume {v.id} ({v.size_gib} GiB, {v.state}).", "ok")
    return redirect(_back())


@bp.get("/volumes/<volume_id>")
def volume(volume_id: str):
    vol = _render(cloud().describe_volumes(g.account, [volume_id]))[0]
    data, error = None, None
    try:
        data = cloud().volume_internals(g.account, volume_id)
    except NotFound:
        raise
    except CloudError as e:  # a root volume, an engine that cannot say: the page still shows the volume
        step = next_step(e.code, str(e))
        error = f"{e} [{e.code}]" + (f" — {step}" if step else "")
    return render_template("volume.html", vol=vol, data=data, error=error)


@bp.post("/volumes/<volume_id>/attach")
@action
def volume_attach(volume_id: str):
    f = request.form
    if not f.get("instance_id"):
        raise InvalidParameter("choose an instance to attach the volume to", code="MissingParameter")
    v = cloud().attach_volume(g.account, volume_id, f["instance_id"], f.get("device") or "/dev/sdf")
    flash(f"Attached {v.id} to {v.instance_id} as {v.device}; the instance sees {v.guest_device}.", "ok")
    return redirect(_back())


@bp.post("/volumes/<volume_id>/detach")
@action
def volume_detach(volume_id: str):
    v = cloud().detach_volume(g.account, volume_id)
    flash(f"Detached {v.id} from {v.instance_id}.", "ok")
    return redirect(_back())


@bp.post("/volumes/<volume_id>/snapshot")
@action
def volume_snapshot(volume_id: str):
    s = cloud().create_snapshot(g.account, volume_id, description=request.form.get("description") or None)
    flash(f"Snapshot {s.id} of {volume_id} ({s.state}).", "ok")
    return redirect(_back())


@bp.post("/volumes/<volume_id>/delete")
@action
def volume_delete(volume_id: str):
    cloud().delete_volume(g.account, volume_id)
    flash(f"Deleted volume {volume_id}.", "ok")
    return redirect(_back())


@bp.post("/snapshots/<snapshot_id>/delete")
@action
def snapshot_delete(snapshot_id: str):
    cloud().delete_snapshot(g.account, snapshot_id)
    flash(f"Deleted snapshot {snapshot_id}.", "ok")
    return redirect(_back())
