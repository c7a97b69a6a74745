"""`pocketcloud lab durability`: what replication buys, on the real Ceph cluster, like a
student script over the public API (an admin's keys):

1. objects written through the cloud (REST PUT, the S3 gateway, RGW), their SHA-256 kept;
2. one OSD holding the first object (the primary of its PG) killed with SIGKILL and held down
   (POST /storage/daemons/osd.N/kill);
3. the cluster sampled about once a second (GET /storage/cluster): it notices, reports
   HEALTH_WARN and degraded PGs, yet every object reads back intact and a new one is written;
4. the OSD released (the server's supervisor restarts it), then the time until every PG is
   active+clean again.

The logic is emulator.storage.ceph.lab.durability; this module gives it the cluster and the
bucket over REST, and writes the timeline (JSON), a chart (PNG) and a report (Markdown).
"""
from __future__ import annotations

import secrets
from pathlib import Path
from typing import Callable

from .client import ApiError, Client
from .labs import save_lab

Progress = Callable[[str], None]
HOW_TO_CEPH = ("this needs the Ceph engine: install its packages (sudo scripts/ceph-packages.sh) and start the "
               "cloud on a new home with POCKETCLOUD_S3_ENGINE=ceph (`POCKETCLOUD_S3_ENGINE=ceph pocketcloud serve`)")


class RestCluster:
    """The cluster as the lab needs it, through the admin REST API."""

    def __init__(self, client: Client):
        self.client = client
        self._hold: set[str] = set()
        self.daemons: set[str] = set()

    def status(self, fresh: bool = False) -> dict:
        from emulator.errors import BackendUnavailable

        try:
            info = self.client.call("GET", "/storage/cluster")
        except ApiError as e:
            if e.status == 503:  # the lab samples on: an unanswered moment is part of the timeline
                raise BackendUnavailable(e.message) from None
            raise
        self.daemons = set(info.get("daemons") or {})
        return info

    def placement(self, bucket: str, key: str) -> dict:
        return self.client.call("GET", f"/buckets/{bucket}/internals", params={"key": key})["object"]

    def killable(self, name: str) -> bool:
        return name in self.daemons

    def hold(self, name: str) -> None:
        self._hold.add(name)  # the kill call holds it: one request, no window for the supervisor

    def kill(self, name: str) -> int | None:
        return self.client.call("POST", f"/storage/daemons/{name}/kill", json={"hold": name in self._hold})["pid"]

    def release(self, name: str) -> None:
        self._hold.discard(name)
        self.client.call("POST", f"/storage/daemons/{name}/release")


class RestBucket:
    """A scratch bucket of the caller's, through REST (and so the gateway, as any client)."""

    def __init__(self, client: Client, bucket: str):
        self.client, self.bucket = client, bucket

    def put(self, key: str, data: bytes) -> None:
        self.client.call("PUT", f"/buckets/{self.bucket}/objects/{key}", data=data)

    def get(self, key: str) -> bytes:
        r = self.client.request("GET", f"/buckets/{self.bucket}/objects/{key}")
        try:
            return r.content
        finally:
            r.close()

    def delete(self, key: str) -> None:
        self.client.call("DELETE", f"/buckets/{self.bucket}/objects/{key}")


def explain_refusal(e: ApiError) -> ApiError:
    """The server's NotACluster, said for this command: what the engine is, how to get Ceph."""
    if e.code == "NotACluster":
        return ApiError(e.status, "NotACluster", f"{e.message.split('.')[0]}: {HOW_TO_CEPH}")
    return e


def require_ceph(client: Client) -> dict:
    """The cluster's state now, or a refusal that says how to get Ceph."""
    try:
        return client.call("GET", "/storage/cluster")
    except ApiError as e:
        raise explain_refusal(e) from None


def run(client: Client, out: Path, *, objects: int, size: int, osd: str | None, timeout: float,
        progress: Progress) -> dict:
    from emulator.storage.ceph.lab import durability

    before = require_ceph(client)
    out.mkdir(parents=True, exist_ok=True)
    progress(f"cluster {before.get('fsid')}: {before['health']}, serving {before['serving']}, "
             f"{before['osds']['up']}/{before['osds']['total']} OSDs up, {before['pgs']['total']} PGs")
    bucket = f"lab-durability-{secrets.token_hex(4)}"
    client.call("POST", "/buckets", json={"name": bucket})
    cluster = RestCluster(client)
    try:
        report = durability(cluster, RestBucket(client, bucket), objects=objects, size=size, osd=osd,
                            timeout=timeout, progress=progress, killable=cluster.killable)
    finally:
        client.call("DELETE", f"/buckets/{bucket}", params={"force": "true"})
    report["bucket"] = bucket
    report["cluster"] = {"fsid": before.get("fsid"), "version": before.get("version"),
                         "osds": before["osds"]["total"], "pgs": before["pgs"]["total"],
                         "hosts": [h["name"] for h in before.get("hosts", [])]}
    report["files"] = save_lab(out, report, json_name="durability.json", chart_name="durability.png",
                               report_name="report.md", chart=lambda path: chart(path, report),
                               report=lambda chart_name: markdown(report, chart_name))
    return report


def timeline(report: dict) -> list[tuple[str, str]]:
    return [(f"{e['t']:.1f}", e["event"]) for e in report["events"]]


def summary(report: dict) -> list[tuple[str, str]]:
    return [("objects", f"{report['objects']} x {report['size']} bytes"),
            ("OSD killed", report["osd"]),
            ("read back intact while it was down", f"{report['intact']}/{report['objects']}"),
            ("seconds until the cluster noticed", f"{report['seconds_to_detect']}"),
            ("seconds held down (degraded, serving)", f"{report['seconds_degraded']}"),
            ("seconds from restart to all PGs active+clean", f"{report['seconds_to_recover']}")]


def markdown(report: dict, chart_name: str) -> str:
    rows = "\n".join(f"| {t} | {e.replace('|', '/')} |" for t, e in timeline(report))
    facts = "\n".join(f"| {k} | {v} |" for k, v in summary(report))
    c = report.get("cluster", {})
    where = next((e["placement"] for e in report["events"] if "placement" in e), None)
    placed = ""
    if where:
        replicas = ", ".join(f"osd.{r['osd']} on {r.get('host') or '?'} ({r.get('host_path')})"
                             for r in where["replicas"])
        placed = (f"\nThe first object, `{where['key']}`, is the RADOS object `{where['object']}` in the pool "
                  f"`{where['pool']}`, placement group {where['pg']}; its replicas: {replicas}. "
                  f"The lab killed {report['osd']}.\n")
    return f"""# Durability lab: one OSD down, every object still served

Cluster {c.get('fsid', '?')} (Ceph {c.get('version', '?')}): {c.get('osds', '?')} OSDs on
{', '.join(c.get('hosts') or ['?'])}, {c.get('pgs', '?')} placement groups, three replicas of every object
(`osd pool default size = 3`, `min size = 2`: a PG serves reads and writes while two of its three
OSDs are up).

| | |
| --- | --- |
{facts}
{placed}
![cluster state over the lab]({chart_name})

## Timeline

| t (s) | event |
| --- | --- |
{rows}

While the OSD is down the PGs it held are `active+undersized+degraded`: active (serving), but
short of a replica. For a few seconds after the failure is noticed, and again when the OSD
returns, those PGs *peer* (their OSDs agree on who holds what): I/O to them waits, it does not
fail, which is why every read above succeeded. When the OSD is back, the PGs recover the
writes it missed; then every PG is `active+clean` and the health is back to what it was.
"""


def pg_layers(pgs: dict[str, int]) -> tuple[int, int, int]:
    """(active+clean, active but short of a replica, not active: peering and the like)."""
    from emulator.storage.ceph.status import INACTIVE

    clean = pgs.get("active+clean", 0)
    inactive = sum(n for state, n in pgs.items()
                   if "active" not in state or any(word in state for word in INACTIVE))
    return clean, sum(pgs.values()) - clean - inactive, inactive


def chart(path: Path, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    samples = report["samples"]
    ts = [s["t"] for s in samples]
    fig, (osds, pgs) = plt.subplots(2, 1, figsize=(13, 7), sharex=True, gridspec_kw={"height_ratios": [1, 1.3]})
    colours = {"ok": "tab:green", "degraded": "tab:orange", "unavailable": "tab:red"}
    for i, s in enumerate(samples):
        end = ts[i + 1] if i + 1 < len(ts) else ts[i] + 1
        osds.axvspan(s["t"], end, color=colours.get(s["serving"], "tab:gray"), alpha=0.15, lw=0)
    osds.step(ts, [s["osds_up"] or 0 for s in samples], where="post", color="black", lw=2)
    total = max((s["osds_total"] or 0) for s in samples) if samples else 0
    osds.set(ylabel="OSDs up", ylim=(0, total + 0.3), yticks=range(total + 1),
             title=f"Durability lab: {report['osd']} killed; {report['intact']}/{report['objects']} objects "
                   "read back intact while it was down")
    osds.legend(handles=[Patch(color=c, alpha=0.3, label=f"serving {k}") for k, c in colours.items()],
                loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    layers = [pg_layers(s["pgs"]) for s in samples]
    pgs.stackplot(ts, *zip(*layers) if layers else ([], [], []), step="post", alpha=0.75,
                  colors=["tab:green", "tab:orange", "tab:red"],
                  labels=["active+clean", "active, short of a replica\n(degraded, undersized, recovering)",
                          "not active yet (peering)"])
    pgs.set(xlabel="seconds since the objects were written", ylabel="placement groups")
    pgs.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    span = max(ts[-1] if ts else 1, report["events"][-1]["t"] if report["events"] else 1)
    labels: list[tuple[float, str]] = []
    for e in report["events"]:
        for ax in (osds, pgs):
            ax.axvline(e["t"], color="gray", linestyle=":", lw=0.8)
        text = e["event"].split(":")[0].split(" (")[0][:34]
        if labels and e["t"] - labels[-1][0] < span / 60:  # too close to read apart: one label
            labels[-1] = (labels[-1][0], f"{labels[-1][1]}; {text}")
        else:
            labels.append((e["t"], text))
    for t, text in labels:
        osds.text(t + span / 200, 0.1, text[:44], rotation=90, fontsize=7, va="bottom", ha="left",
                  bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1})
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
