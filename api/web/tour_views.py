"""The console's tour (/ui/tour): the same five steps as `pocketcloud tour` (texts and the
comparison come from api/tour.py), one button each. The tour's instances are ordinary
instances named tour-container and tour-vm, so the Instances page shows them too."""
from __future__ import annotations

import platform

from flask import flash, g, jsonify, redirect, render_template, url_for

from emulator.errors import CloudError, InvalidParameter

from .. import tour
from ..text import hypervisor_summary
from .views import action, bp, cloud


def _tour_instances() -> dict[str, dict]:
    """The caller's live tour instances by kind."""
    found = {}
    for inst in cloud().describe_instances(g.account):
        if inst.state != "terminated" and inst.name in tour.NAMES.values():
            found[inst.kind] = inst.to_dict()
    return found


def _engines() -> dict[str, dict]:
    """Which engines are up, without /info's details: those may wait for the KVM probe."""
    out = {}
    for kind, driver in cloud().drivers.items():
        ok, desc = driver.available()
        out[kind] = {"available": ok, "description": desc}
    return out


def _page(comparison=None):
    made = _tour_instances()
    images = [i for i in cloud().list_images() if {"container", "vm"} <= set(i.get("kind_names") or [])]
    return render_template("tour.html", steps={s["key"]: s for s in tour.STEPS}, made=made, engines=_engines(),
                           image="tiny" if any(i["name"] == "tiny" for i in images) else None,
                           comparison=comparison, next_lines=tour.NEXT)


@bp.get("/tour")
def tour_page():
    return _page()


@bp.get("/tour/hypervisor.json")
def tour_hypervisor():
    """The accelerator line, fetched by the page: a new cloud's first answer waits for its
    KVM probe (up to ~20 s), which the page shows as a counting note instead of hanging."""
    return jsonify(line=hypervisor_summary(cloud().hypervisor_info())[0])


@bp.post("/tour/<kind>")
@action
def tour_launch(kind: str):
    if kind not in tour.NAMES:
        raise InvalidParameter(f"the tour launches a container or a vm, not {kind!r}")
    if kind in _tour_instances():
        return redirect(url_for("web.tour_page"))
    inst = cloud().run_instance(g.account, image="tiny", kind=kind, type="t2.nano", name=tour.NAMES[kind],
                                tags={"pocketcloud:tour": kind})
    flash(f"Launched {inst.name} ({inst.id}): {inst.state}.", "ok")
    return redirect(url_for("web.tour_page") + f"#step-{kind}")


@bp.post("/tour-compare")
@action
def tour_compare():
    made = _tour_instances()
    if set(made) != {"container", "vm"} or any(i["state"] != "running" for i in made.values()):
        raise InvalidParameter("the comparison needs both tour instances running: launch them first (steps 2 and 3)",
                               code="IncorrectInstanceState")

    def run(iid: str, cmd: str) -> str:
        try:
            return cloud().exec_command(g.account, iid, cmd, 30).stdout
        except CloudError as e:
            return f"({e.message})"

    return _page(tour.comparison(run, lambda iid: cloud().instance_internals(g.account, iid), made["container"],
                                 made["vm"], platform.release()))


@bp.post("/tour-cleanup")
@action
def tour_cleanup():
    gone = []
    for inst in _tour_instances().values():
        cloud().terminate_instance(g.account, inst["id"])
        gone.append(inst["name"])
    flash(f"Terminated {', '.join(gone)}." if gone else "Nothing to clean up.", "ok")
    return redirect(url_for("web.tour_page") + "#step-cleanup")


__all__ = ["tour_page", "tour_hypervisor", "tour_launch", "tour_compare", "tour_cleanup"]
