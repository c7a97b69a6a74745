"""What the cluster says about itself, read into plain dicts: health, OSDs, PGs, placement.

Pure functions over the JSON that `ceph status` / `ceph osd map` print, so that the wording
and the degraded-but-serving rule are unit-tested without a cluster.
"""
from __future__ import annotations

INACTIVE = ("peering", "down", "incomplete", "stale", "unknown", "creating", "activating", "inactive")
DEGRADED = ("degraded", "undersized", "recovering", "backfill", "remapped", "peered")


def health_reason(status: dict) -> str:
    """One line: the summaries of the health checks, worst first ('' when HEALTH_OK)."""
    checks = (status.get("health") or {}).get("checks") or {}
    order = {"HEALTH_ERR": 0, "HEALTH_WARN": 1}
    items = sorted(checks.items(), key=lambda kv: (order.get(kv[1].get("severity"), 2), kv[0]))
    return "; ".join((c.get("summary") or {}).get("message", code) for code, c in items)


def pg_states(status: dict) -> dict[str, int]:
    return {s["state_name"]: s["count"] for s in (status.get("pgmap") or {}).get("pgs_by_state") or []}


def serving(status: dict) -> str:
    """'ok': every PG active and clean; 'degraded': every PG active (reads and writes go on)
    but some lack a replica or an OSD is down; 'unavailable': some PG cannot serve I/O now."""
    states = pg_states(status)
    osdmap = status.get("osdmap") or {}
    osdmap = osdmap.get("osdmap", osdmap)  # older releases nest it once more
    if not states:
        return "unavailable"
    if any(any(word in state for word in INACTIVE) or "active" not in state for state in states):
        return "unavailable"
    if any(any(word in state for word in DEGRADED) for state in states) \
            or osdmap.get("num_up_osds", 0) < osdmap.get("num_osds", 0):
        return "degraded"
    return "ok"


def summarize(status: dict, osd_tree: dict | None = None) -> dict:
    osdmap = status.get("osdmap") or {}
    osdmap = osdmap.get("osdmap", osdmap)
    pgmap = status.get("pgmap") or {}
    down = []
    if osd_tree:
        down = [n["name"] for n in osd_tree.get("nodes", []) if n.get("type") == "osd" and n.get("status") != "up"]
    return {
        "health": (status.get("health") or {}).get("status", "UNKNOWN"),
        "health_reason": health_reason(status),
        "serving": serving(status),
        "osds": {"total": osdmap.get("num_osds", 0), "up": osdmap.get("num_up_osds", 0),
                 "in": osdmap.get("num_in_osds", 0), "down": down},
        "pgs": {"total": pgmap.get("num_pgs", 0), "states": pg_states(status)},
        "usage": {"objects": pgmap.get("num_objects", 0), "bytes_used": pgmap.get("bytes_used", 0),
                  "bytes_total": pgmap.get("bytes_total", 0)},
    }


def head_oid(marker: str, key: str) -> str:
    """The RADOS object holding an S3 object's head (first 4 MiB and its metadata), as RGW
    names it: bucket marker, '_', the key ('_' doubled in front when the key starts with '_')."""
    return f"{marker}_{'_' + key if key.startswith('_') else key}"


def osd_hosts(tree: dict) -> dict[int, str]:
    """OSD id -> the CRUSH host it sits under, from `ceph osd tree`."""
    nodes = {n["id"]: n for n in tree.get("nodes", [])}
    return {c: n["name"] for n in nodes.values() if n.get("type") == "host" for c in n.get("children", [])
            if nodes.get(c, {}).get("type") == "osd"}


def hosts(tree: dict) -> list[dict]:
    """The CRUSH hosts with their OSDs (up or down, in or out), from `ceph osd tree`."""
    nodes = {n["id"]: n for n in tree.get("nodes", [])}
    out = []
    for n in tree.get("nodes", []):
        if n.get("type") != "host":
            continue
        osds = [{"id": c, "name": nodes[c]["name"], "status": nodes[c].get("status", "unknown"),
                 "in": float(nodes[c].get("reweight", 0)) > 0} for c in n.get("children", [])
                if nodes.get(c, {}).get("type") == "osd"]
        out.append({"name": n["name"], "osds": sorted(osds, key=lambda o: o["id"])})
    return sorted(out, key=lambda h: h["name"])


def placement(pool: str, oid: str, osd_map: dict, osd_paths: dict[int, str], stat: dict | None,
              hosts_of: dict[int, str] | None = None) -> dict:
    """Where a RADOS object lives: pool, PG, the acting OSDs (primary first), their hosts and files."""
    acting = osd_map.get("acting") or []
    hosts_of = hosts_of or {}
    return {
        "pool": pool,
        "object": oid,
        "pg": osd_map.get("pgid"),
        "up": osd_map.get("up") or [],
        "acting": acting,
        "primary": osd_map.get("acting_primary"),
        "replicas": [{"osd": i, "host": hosts_of.get(i), "host_path": osd_paths.get(i),
                      "note": "BlueStore keeps the object inside this block file, not as a file of its own"}
                     for i in acting],
        "exists": stat is not None,
        "size": (stat or {}).get("size"),
    }
