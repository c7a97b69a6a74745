"""`pocketcloud lab cattle`: the lecture's pets-vs-cattle demo, end to end, on real engines.

One pet instance (launched by hand, in no group) and a group of three cattle from a launch
template. Both get killed behind pocketcloud's back (`docker kill` / `virsh destroy`, the
engine directly, as a crash would). The pet stays dead, and the cloud says why; the group
notices its missing member, terminates it and launches a clean clone. The lab samples the
API four times a second and writes the timeline, a PNG chart of instance count over time per
group, and a Markdown report. It runs on the server host (it needs the engines to kill).
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from .client import ApiError, Client
from .labs import save_lab

Progress = Callable[[str], None]
SAMPLE = 0.25
TIMEOUTS = {"container": 90.0, "vm": 420.0}


class Engine:
    """The lab's own line to the engine, to do what a crash does (kill an instance without
    telling pocketcloud) and to see what really runs, ahead of what the API has noticed."""

    def __init__(self, kind: str, libvirt_uri: str = "qemu:///system"):
        self.kind = kind
        if kind == "container":
            import docker

            self.docker = docker.from_env()
        else:
            import libvirt

            libvirt.registerErrorHandler(lambda *_: None, None)  # a domain gone is an answer, not stderr noise
            self.virt = libvirt.open(libvirt_uri)

    def kill(self, engine_id: str) -> None:
        if self.kind == "container":
            self.docker.api.kill(engine_id)
        else:
            self.virt.lookupByName(engine_id).destroy()

    def running(self, engine_id: str | None) -> bool:
        if not engine_id:
            return False
        try:
            if self.kind == "container":
                return self.docker.api.inspect_container(engine_id)["State"]["Running"]
            return bool(self.virt.lookupByName(engine_id).isActive())
        except Exception:  # noqa: BLE001 - gone from the engine: not running
            return False

    def close(self) -> None:
        if self.kind == "container":
            self.docker.close()
        else:
            self.virt.close()


def _wait(what: str, check: Callable[[], bool], timeout: float, progress: Progress) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(SAMPLE)
    raise ApiError(0, "Timeout", f"{what} did not happen within {timeout:.0f}s")


def _serving(group: dict) -> list[str]:
    return [m["id"] for m in group["members"]
            if m["lifecycle"] == "InService" and m["health"] == "Healthy" and m["state"] == "running"]


def _sample(client: Client, engine: Engine, name: str, pet: str, pet_engine: str) -> dict:
    """One look at both groups: what the API says, and what the engine really runs."""
    g = client.call("GET", f"/groups/{name}")
    p = client.call("GET", f"/instances/{pet}")
    return {"t": time.time(), "cattle": len(_serving(g)), "pet": int(p["state"] == "running"), "pet_state": p["state"],
            "cattle_engine": sum(engine.running(m["engine_id"]) for m in g["members"] if m["state"] == "running"),
            "pet_engine": int(engine.running(pet_engine)), "members": [m["id"] for m in g["members"]]}


def cattle(client: Client, out: Path, kind: str = "container", image: str = "tiny", itype: str = "t2.nano",
           progress: Progress = print, libvirt_uri: str = "qemu:///system") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    name = f"lab-cattle-{kind}-{time.strftime('%H%M%S')}"
    timeout = TIMEOUTS[kind]
    pet = None
    made_template = made_group = False
    engine = Engine(kind, libvirt_uri)
    try:
        progress(f"launch template {name}: {image} as a {kind}, {itype}")
        client.call("POST", "/launch-templates", json={"name": name, "image": image, "kind": kind, "type": itype})
        made_template = True
        progress("the pet: one instance launched by hand, in no group")
        pet = client.call("POST", "/instances", json={"name": f"{name}-pet", "image": image, "kind": kind,
                                                      "type": itype})["id"]
        progress(f"the cattle: group {name}, desired capacity 3 across three zones")
        client.call("POST", "/groups", json={"name": name, "launch_template": {"name": name}, "min": 1, "max": 4,
                                             "desired": 3})
        made_group = True
        _wait("the group reaching 3 instances in service",
              lambda: len(_serving(client.call("GET", f"/groups/{name}"))) == 3, timeout, progress)
        _wait("the pet running", lambda: client.call("GET", f"/instances/{pet}")["state"] == "running", timeout,
              progress)
        group = client.call("GET", f"/groups/{name}")
        victim = _serving(group)[0]
        engines = {i: client.call("GET", f"/instances/{i}")["engine"]["id"] for i in (pet, victim)}
        samples: list[dict] = []
        for _ in range(8):  # two seconds of "before"
            samples.append(_sample(client, engine, name, pet, engines[pet]))
            time.sleep(SAMPLE)
        progress(f"killing the pet {pet} and the cattle {victim} behind pocketcloud's back "
                 f"({'docker kill' if kind == 'container' else 'virsh destroy'})")
        # Both at once. The clock starts at the kill; the engine's own time to carry it out
        # (`virsh destroy` of a TCG guest takes a second or two) is reported beside it.
        kills = [threading.Thread(target=engine.kill, args=(engines[i],)) for i in (pet, victim)]
        killed_at = time.time()
        for k in kills:
            k.start()
        for k in kills:
            k.join()
        kill_s = round(time.time() - killed_at, 2)
        progress(f"  the engine took {kill_s:.1f}s to kill both")
        deadline = time.monotonic() + timeout
        back_at = None
        while time.monotonic() < deadline:
            row = _sample(client, engine, name, pet, engines[pet])
            samples.append(row)
            if back_at is None and row["cattle"] == 3 and victim not in row["members"]:
                back_at = row["t"]
                progress(f"  the group is back to 3 after {back_at - killed_at:.1f}s")
            if back_at is not None and row["pet_state"] != "running" and row["t"] - back_at > 5:
                break
            time.sleep(SAMPLE)
        if back_at is None:
            raise ApiError(0, "Timeout", f"the group did not replace {victim} within {timeout:.0f}s")
        acts = client.call("GET", f"/groups/{name}/activities")["activities"]
        why_pet = client.call("GET", f"/instances/{pet}/group")
        why_victim = client.call("GET", f"/instances/{victim}/group")
        timeline = {**_timeline(killed_at, back_at, victim, acts, samples, why_victim), "engine_kill_s": kill_s}
        result = {"kind": kind, "group": name, "pet": pet, "victim": victim, "killed_at": killed_at,
                  "timeline": timeline, "pet_explained": why_pet, "victim_explained": why_victim,
                  "activities": acts, "samples": samples}
        stem = f"cattle-{kind}"
        result.update(save_lab(out, result, json_name=f"{stem}.json", chart_name=f"{stem}.png",
                               report_name=f"{stem}.md", chart=lambda path: chart(result, path),
                               report=lambda chart_name: report(result, chart_name)))
        return result
    finally:
        engine.close()
        if made_group:
            progress(f"clean-up: deleting group {name} and its instances")
            try:
                client.call("DELETE", f"/groups/{name}", params={"force": "true"})
                _wait("the group's deletion", lambda: name not in [g["name"] for g in
                                                                  client.call("GET", "/groups")["groups"]],
                      timeout, progress)
            except ApiError as e:
                progress(f"  clean-up of the group failed: {e.message}")
        if pet:
            try:
                client.call("DELETE", f"/instances/{pet}")
            except ApiError as e:
                progress(f"  clean-up of the pet failed: {e.message}")
        if made_template:
            try:
                client.call("DELETE", f"/launch-templates/{name}")
            except ApiError as e:
                progress(f"  clean-up of the launch template failed: {e.message}")


def _timeline(killed_at: float, back_at: float, victim: str, acts: list[dict], samples: list[dict],
              why_victim: dict) -> dict:
    terminate = next((a for a in acts if a["description"] == f"Terminating EC2 instance: {victim}"), None)
    replacement = why_victim.get("replaced_by")
    launch = next((a for a in acts if replacement and a["description"].endswith(replacement)), None)
    pet_down = next((s["t"] for s in samples if s["t"] >= killed_at and not s["pet"]), None)
    rel = lambda t: round(t - killed_at, 2) if t else None  # noqa: E731
    return {"cattle_detected_s": rel(terminate and terminate["start_ts"]),
            "replacement_launched_s": rel(launch and launch["start_ts"]),
            "replacement_running_s": rel(launch and launch["end_ts"]),
            "group_back_to_3_s": rel(back_at), "replacement": replacement,
            "pet_seen_down_s": rel(pet_down), "pet_back": any(s["pet"] for s in samples if pet_down and s["t"] > pet_down)}


def chart(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = result["killed_at"]
    xs = [s["t"] - t0 for s in result["samples"]]
    fig, ax = plt.subplots(figsize=(9, 5.2), dpi=110)
    for key, color, label in (("cattle", "#2563eb", f"cattle: group {result['group']}"),
                              ("pet", "#dc2626", "pet: one instance in no group")):
        ax.step(xs, [s[f"{key}_engine"] for s in result["samples"]], where="post", lw=2.4, color=color,
                label=f"{label} (running on the engine)")
        ax.step(xs, [s[key] for s in result["samples"]], where="post", lw=1.2, ls="--", color=color, alpha=0.7,
                label=f"{label} (as the API reports it)")
    ax.axvline(0, color="#111", ls="--", lw=1)
    ax.annotate("both killed behind pocketcloud's back", (0, 3.55), xytext=(4, 0), textcoords="offset points",
                fontsize=8.5)
    tl = result["timeline"]
    for (key, label), y in zip((("engine_kill_s", "engine done"), ("cattle_detected_s", "detected"),
                                ("replacement_running_s", "replacement running"),
                                ("pet_seen_down_s", "pet marked stopped")), (3.3, 2.5, 2.2, 1.3)):
        if tl.get(key) is not None:
            ax.axvline(tl[key], color="#6b7280", ls=":", lw=1)
            ax.annotate(f"{label} +{tl[key]:.1f}s", (tl[key], y), xytext=(4, 0), textcoords="offset points",
                        fontsize=8.5, color="#374151")
    ax.set_ylim(-0.2, 3.9)
    ax.set_yticks([0, 1, 2, 3])
    ax.set_xlabel("seconds since the kill")
    ax.set_ylabel("instances running")
    ax.set_title(f"pets vs cattle on pocketcloud ({result['kind']}s): the group heals, the pet stays dead")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7.5, frameon=False)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def report(result: dict, chart_name: str) -> str:
    tl = result["timeline"]
    fmt = lambda v: "-" if v is None else f"{v:.2f} s"  # noqa: E731
    lines = [
        f"# Pets vs cattle ({result['kind']}s)", "",
        f"One pet (`{result['pet']}`, launched by hand) and a group of three cattle (`{result['group']}`, "
        "from a launch template). Both were killed behind pocketcloud's back "
        f"({'`docker kill`' if result['kind'] == 'container' else '`virsh destroy`'}).", "",
        "| event | after the kill |", "| --- | --- |",
        f"| the engine finished killing both ({'docker kill' if result['kind'] == 'container' else 'virsh destroy'}) "
        f"| {fmt(tl['engine_kill_s'])} |",
        f"| group noticed its member {result['victim']} was gone (terminating activity) | {fmt(tl['cattle_detected_s'])} |",
        f"| replacement {tl['replacement'] or '?'} launching | {fmt(tl['replacement_launched_s'])} |",
        f"| replacement running | {fmt(tl['replacement_running_s'])} |",
        f"| group back to 3 in service (seen from the API) | {fmt(tl['group_back_to_3_s'])} |",
        f"| pet seen stopped (reconcile) | {fmt(tl['pet_seen_down_s'])}; back later: {'yes' if tl['pet_back'] else 'no'} |",
        "", f"![instance count over time]({chart_name})", "",
        "## Why the pet stayed dead", "", result["pet_explained"]["why"], "",
        "## Why the cattle came back", "", result["victim_explained"]["why"], "",
        "## The group's activity history (newest first, as `aws autoscaling describe-scaling-activities`)", "",
        "| status | description | cause |", "| --- | --- | --- |",
    ]
    lines += [f"| {a['status']} | {a['description']} | {a['cause']} |" for a in result["activities"]]
    return "\n".join(lines) + "\n"
