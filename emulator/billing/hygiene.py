"""Cloud hygiene: what is left running or lying around, what it costs per month, and the one
command that cleans it up. Idle CPU comes from the engines (the meter's samples), not guesses."""
from __future__ import annotations

import json
import math
import time

from ..compute.types import INSTANCE_TYPES
from ..errors import CloudError, InvalidParameter
from . import clock as clk
from . import ledger
from .meter import SLOT_S, BlockItem

HOURS_PER_MONTH = 730  # AWS's convention for monthly estimates


def _param(value, default: float, lo: float, hi: float, what: str) -> float:
    if value is None:
        return default
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"{what} must be a number") from None
    if not lo <= v <= hi or v != v:
        raise InvalidParameter(f"{what} must be between {lo:g} and {hi:g}")
    return v


class Hygiene:
    def __init__(self, cloud, billing):
        self.cloud = cloud
        self.store = cloud.store
        self.billing = billing

    def report(self, accounts: list[str] | None, *, idle_minutes=None, cpu_percent=None, untouched_days=None,
               snapshot_days=None) -> dict:
        idle_minutes = _param(idle_minutes, 10, 0.25, 24 * 60, "idle_minutes")
        cpu_percent = _param(cpu_percent, 5, 0, 100, "cpu_percent")
        untouched_days = _param(untouched_days, 30, 0, 400, "untouched_days")
        snapshot_days = _param(snapshot_days, 30, 0, 4000, "snapshot_days")
        prices = self.billing.prices.current()
        self.billing.meter_now(probe_engines=False)
        insts = [dict(r) for r in self.store.query("SELECT * FROM instances WHERE state != 'terminated'")]
        if accounts is not None:
            insts = [i for i in insts if i["owner"] in accounts]
        blocks = [b for b in self.billing.meter._blocks() if accounts is None or b.account in accounts]
        images = [dict(r) for r in self.store.query("SELECT id, owner, name, snapshot_id FROM amis WHERE state='available'")
                  if accounts is None or r["owner"] in accounts]
        held = {r["snapshot_id"] for r in images}
        items = (self._idle(insts, idle_minutes, cpu_percent, prices) + self._stopped(insts, blocks, prices)
                 + self._volumes([b for b in blocks if b.id not in held], snapshot_days, prices)
                 + self._images(images, insts, blocks, prices) + self._buckets(accounts, untouched_days, prices)
                 + self._uploads(accounts, prices) + self._keys(accounts, insts) + self._groups(accounts, insts))
        counts: dict[str, int] = {}
        for it in items:
            counts[it["kind"]] = counts.get(it["kind"], 0) + 1
        notes = []
        if not self.billing.meter.block_sources:
            notes.append("volumes and snapshots are not offered by this cloud yet: none checked")
        return {"billing_clock": self.billing.clock.describe(),
                "parameters": {"idle_minutes": idle_minutes, "cpu_percent": cpu_percent,
                               "untouched_days": untouched_days, "snapshot_days": snapshot_days},
                "items": items, "counts": counts,
                "monthly_total": sum(it["monthly_cost"] for it in items), "notes": notes}

    # -- instances ---------------------------------------------------------------------------------
    def _idle(self, insts: list[dict], minutes: float, cpu_percent: float, prices) -> list[dict]:
        now = time.time()
        window = minutes * 60
        out = []
        for i in insts:
            if i["state"] != "running":
                continue
            r = self.store.one("SELECT SUM(seconds) AS s, SUM(cpu_seconds) AS cpu FROM engine_recent "
                               "WHERE resource=? AND slot >= ?", (i["id"], int((now - window) // SLOT_S)))
            itype = INSTANCE_TYPES.get(i["type"])
            # Idle means watched for (nearly) the whole window, not just started.
            if not r or not r["s"] or r["s"] < 0.8 * window or itype is None:
                continue
            util = 100.0 * r["cpu"] / (r["s"] * itype.vcpus)
            if util >= cpu_percent:
                continue
            out.append(self._item("idle-instance", i, prices.instance(i["type"]) * HOURS_PER_MONTH,
                                  f"{i['type']} {i['kind']} used {util:.2f}% of its {itype.vcpus} vCPU(s) over the "
                                  f"last {minutes:g} minutes (threshold {cpu_percent:g}%)",
                                  f"pocketcloud instances stop {i['id']}", cpu_percent=round(util, 3)))
        return out

    def _stopped(self, insts: list[dict], blocks: list[BlockItem], prices) -> list[dict]:
        out = []
        for i in insts:
            if i["state"] != "stopped":
                continue
            attached = [b for b in blocks if b.kind == "volume" and b.attached_to == i["id"]]
            if attached:
                gib = sum(b.size_gib for b in attached)
                how = f"{len(attached)} volume(s), {gib:g} GiB, billed as gp3 while it is stopped"
            else:
                gib = self._root_gib(i)
                how = (f"its root disk (about {gib:g} GiB) stays on the host; on AWS an EBS root volume "
                       "keeps billing as gp3 while the instance is stopped")
            out.append(self._item("stopped-instance", i, gib * prices.gp3_gb_month,
                                  f"stopped {i['type']} {i['kind']}: {how}",
                                  f"pocketcloud instances rm {i['id']}", disk_gib=gib))
        return out

    def _root_gib(self, inst: dict) -> float:
        try:
            driver = self.cloud.driver(inst["kind"])
            summary = driver.internals(inst["engine_id"]).get("summary", {}) if inst["engine_id"] else {}
            size = summary.get("image_size_bytes") or 0
        except (CloudError, AttributeError):  # an engine that cannot tell: count the 1 GiB minimum
            size = 0
        return float(max(1, math.ceil(size / ledger.GIB)))

    # -- volumes and snapshots (from the block sources) ---------------------------------------------------
    def _volumes(self, blocks: list[BlockItem], snapshot_days: float, prices) -> list[dict]:
        now = self.billing.clock.now()
        out = []
        for b in blocks:
            row = {"id": b.id, "owner": b.account, "name": b.tags.get("Name", "")}
            if b.kind == "volume" and not b.attached_to:
                out.append(self._item("unattached-volume", row, b.size_gib * prices.gp3_gb_month,
                                      f"{b.size_gib:g} GiB {b.volume_type} volume attached to nothing",
                                      f"aws ec2 delete-volume --volume-id {b.id}", size_gib=b.size_gib))
            elif b.kind == "snapshot" and b.created_at:
                age = (now - self.billing.clock.sim(b.created_at)) / 86400
                if age >= snapshot_days:
                    out.append(self._item("old-snapshot", row, b.size_gib * prices.snapshot_gb_month,
                                          f"{b.size_gib:g} GiB snapshot, {age:.0f} days old on the billing clock",
                                          f"aws ec2 delete-snapshot --snapshot-id {b.id}", size_gib=b.size_gib))
        return out

    def _images(self, images: list[dict], insts: list[dict], blocks: list[BlockItem], prices) -> list[dict]:
        """An image of one's own costs its snapshot's storage (which cannot go before it): one
        that no instance runs from is that cost for nothing yet."""
        used = {i["image"] for i in insts}
        stored = {b.id: b.size_gib for b in blocks if b.kind == "snapshot"}
        out = []
        for r in images:
            if r["id"] in used:
                continue
            gib = stored.get(r["snapshot_id"], 0.0)
            out.append(self._item("unused-image", r, gib * prices.snapshot_gb_month,
                                  f"no instance runs from this image; its snapshot {r['snapshot_id']} stores {gib:g} GiB",
                                  f"aws ec2 deregister-image --image-id {r['id']} && "
                                  f"aws ec2 delete-snapshot --snapshot-id {r['snapshot_id']}", size_gib=gib))
        return out

    # -- object storage -----------------------------------------------------------------------------------
    def _buckets(self, accounts, untouched_days: float, prices) -> list[dict]:
        since = clk.hour_start(self.billing.clock.now() - untouched_days * 86400)
        sql = ("SELECT b.name, b.owner, b.created_at, (SELECT COUNT(*) FROM objects o WHERE o.bucket = b.name) AS n, "
               "(SELECT COALESCE(SUM(size), 0) FROM objects o WHERE o.bucket = b.name) AS bytes, "
               "(SELECT COUNT(*) FROM multipart_uploads u WHERE u.bucket = b.name) AS uploads FROM buckets b")
        out = []
        for r in self.store.query(sql):
            if accounts is not None and r["owner"] not in accounts:
                continue
            row = {"id": r["name"], "owner": r["owner"], "name": r["name"]}
            gib = r["bytes"] / ledger.GIB
            if r["n"] == 0 and r["uploads"] == 0:
                out.append(self._item("empty-bucket", row, 0.0, "bucket holds no objects",
                                      f"pocketcloud buckets rb {r['name']}"))
                continue
            touched = self.store.one("SELECT 1 FROM usage WHERE resource=? AND usage_type IN (?, ?) AND hour >= ? "
                                     "LIMIT 1", (r["name"], ledger.S3_TIER1, ledger.S3_TIER2, since))
            created = self.billing.clock.sim(r["created_at"])
            if touched is None and created < since:
                out.append(self._item("untouched-bucket", row, gib * prices.s3_gb_month,
                                      f"{r['n']} objects ({gib:.3f} GiB), no request in the last "
                                      f"{untouched_days:g} days on the billing clock",
                                      f"pocketcloud buckets rb {r['name']} --force", size_gib=round(gib, 6)))
        return out

    def _uploads(self, accounts, prices) -> list[dict]:
        out = []
        now = time.time()
        for r in self.store.query(
                "SELECT u.upload_id, u.bucket, u.key, u.created_at, b.owner, COALESCE(SUM(p.size), 0) AS bytes, "
                "COUNT(p.part_number) AS parts FROM multipart_uploads u JOIN buckets b ON b.name = u.bucket "
                "LEFT JOIN multipart_parts p ON p.upload_id = u.upload_id GROUP BY u.upload_id"):
            if accounts is not None and r["owner"] not in accounts:
                continue
            gib = r["bytes"] / ledger.GIB
            row = {"id": r["upload_id"], "owner": r["owner"], "name": f"s3://{r['bucket']}/{r['key']}"}
            out.append(self._item(
                "incomplete-multipart-upload", row, gib * prices.s3_gb_month,
                f"{r['parts']} part(s), {r['bytes']} bytes held since {clk.iso(r['created_at'])} "
                f"({(now - r['created_at']) / 60:.0f} min ago), never completed",
                f"aws s3api abort-multipart-upload --bucket {r['bucket']} --key '{r['key']}' "
                f"--upload-id {r['upload_id']}", bytes=r["bytes"]))
        return out

    # -- EC2 odds and ends ------------------------------------------------------------------------------------
    def _keys(self, accounts, insts: list[dict]) -> list[dict]:
        used = {(i["owner"], i["key_name"]) for i in insts if i["key_name"]}
        out = []
        for r in self.store.query("SELECT id, owner, name FROM keypairs ORDER BY created_at"):
            if (accounts is None or r["owner"] in accounts) and (r["owner"], r["name"]) not in used:
                out.append(self._item("unused-key-pair", {"id": r["id"], "owner": r["owner"], "name": r["name"]}, 0.0,
                                      "no instance uses this key pair (free, but a key nobody needs is a risk)",
                                      f"pocketcloud keys rm '{r['name']}'"))
        return out

    def _groups(self, accounts, insts: list[dict]) -> list[dict]:
        used = set()
        for i in insts:
            used.update(json.loads(i["details"] or "{}").get("security_groups", []))
        out = []
        for r in self.store.query("SELECT id, owner, name FROM security_groups WHERE name != 'default' "
                                  "ORDER BY created_at"):
            if (accounts is None or r["owner"] in accounts) and r["id"] not in used:
                out.append(self._item("unused-security-group", {"id": r["id"], "owner": r["owner"], "name": r["name"]},
                                      0.0, "no instance is in this security group (free; clutter)",
                                      f"aws ec2 delete-security-group --group-id {r['id']}"))
        return out

    @staticmethod
    def _item(kind: str, row: dict, monthly: float, detail: str, cleanup: str, **extra) -> dict:
        return {"kind": kind, "resource": row["id"], "name": row.get("name") or "", "account": row["owner"],
                "monthly_cost": monthly, "detail": detail, "cleanup": cleanup, **extra}
