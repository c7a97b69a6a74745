"""The price list: shipped defaults (prices.toml beside this module) with a per-cloud override
file merged over them. Every bill says which list and date its figures come from."""
from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..compute.types import INSTANCE_TYPES
from ..errors import InvalidParameter

log = logging.getLogger("pocketcloud.billing")
DEFAULTS = Path(__file__).with_name("prices.toml")


@dataclass(frozen=True)
class PriceList:
    taken: str
    region: str
    currency: str
    pages: tuple[str, ...]
    note: str
    override: str | None
    instance_hour: dict[str, float] = field(default_factory=dict)
    minimum_seconds: float = 60.0
    gp3_gb_month: float = 0.0
    snapshot_gb_month: float = 0.0
    s3_gb_month: float = 0.0
    s3_tier1_per_1000: float = 0.0
    s3_tier2_per_1000: float = 0.0
    transfer_out_gb: float = 0.0

    def instance(self, itype: str) -> float:
        return self.instance_hour.get(itype, 0.0)

    def to_dict(self) -> dict:
        return {
            "source": {"taken": self.taken, "region": self.region, "currency": self.currency,
                       "pages": list(self.pages), "note": self.note, "override_file": self.override},
            "ec2": {"instance_hour": dict(self.instance_hour), "minimum_seconds": self.minimum_seconds},
            "ebs": {"gp3_gb_month": self.gp3_gb_month, "snapshot_gb_month": self.snapshot_gb_month},
            "s3": {"standard_gb_month": self.s3_gb_month, "tier1_per_1000": self.s3_tier1_per_1000,
                   "tier2_per_1000": self.s3_tier2_per_1000},
            "data_transfer": {"out_gb": self.transfer_out_gb},
        }


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _number(doc: dict, *path: str) -> float:
    v = doc
    for p in path:
        v = v.get(p) if isinstance(v, dict) else None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise InvalidParameter(f"price {'.'.join(path)} must be a number >= 0, not {v!r}")
    return float(v)


def parse(doc: dict, override: str | None = None) -> PriceList:
    src = doc.get("source", {})
    hours = doc.get("ec2", {}).get("instance_hour", {})
    if not isinstance(hours, dict):
        raise InvalidParameter("ec2.instance_hour must be a table of instance type = USD per hour")
    table = {t: _number(hours, t) for t in hours}
    missing = [t for t in INSTANCE_TYPES if t not in table]
    if missing:
        log.warning("the price list has no price for %s: those instance types bill at 0", ", ".join(missing))
    return PriceList(
        taken=str(src.get("taken", "unknown")), region=str(src.get("region", "")),
        currency=str(src.get("currency", "USD")), pages=tuple(str(p) for p in src.get("pages", [])),
        note=str(src.get("note", "")).strip(), override=override, instance_hour=table,
        minimum_seconds=_number(doc, "ec2", "minimum_seconds"),
        gp3_gb_month=_number(doc, "ebs", "gp3_gb_month"), snapshot_gb_month=_number(doc, "ebs", "snapshot_gb_month"),
        s3_gb_month=_number(doc, "s3", "standard_gb_month"), s3_tier1_per_1000=_number(doc, "s3", "tier1_per_1000"),
        s3_tier2_per_1000=_number(doc, "s3", "tier2_per_1000"), transfer_out_gb=_number(doc, "data_transfer", "out_gb"),
    )


class PriceBook:
    """The effective list, re-read when the override file changes (no restart needed)."""

    def __init__(self, override: Path | None):
        self.override = override
        self._stamp: float | None = None
        self._list: PriceList | None = None

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.override).st_mtime if self.override else None
        except OSError:
            return None

    def current(self) -> PriceList:
        stamp = self._mtime()
        if self._list is None or stamp != self._stamp:
            doc = tomllib.loads(DEFAULTS.read_text())
            used = None
            if stamp is not None:
                try:
                    doc = _merge(doc, tomllib.loads(Path(self.override).read_text()))
                    used = str(self.override)
                    parse(doc, used)  # validate before adopting it
                except (OSError, tomllib.TOMLDecodeError, InvalidParameter) as e:
                    log.error("ignoring the price override %s: %s", self.override, e)
                    doc, used = tomllib.loads(DEFAULTS.read_text()), None
            self._list, self._stamp = parse(doc, used), stamp
        return self._list
