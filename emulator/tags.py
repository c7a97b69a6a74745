"""Tags on every EC2 resource other than instances (whose tags live on their record):
VPCs, subnets, security groups and their rules, key pairs, network interfaces, volumes.

The resource type is read from the id's prefix, as EC2 does; callers check that the
resource exists and is the caller's before tagging it.
"""
from __future__ import annotations

from . import validation
from .state import Store

PREFIXES = {"vpc": "vpc", "subnet": "subnet", "sg": "security-group", "sgr": "security-group-rule",
            "key": "key-pair", "eni": "network-interface", "vol": "volume", "i": "instance",
            "snap": "snapshot", "ami": "image"}


def resource_type(resource_id: str) -> str | None:
    return PREFIXES.get(resource_id.split("-", 1)[0]) if "-" in resource_id else None


class Tags:
    def __init__(self, store: Store):
        self.store = store

    def of(self, owner: str, ids: list[str] | None = None) -> dict[str, dict[str, str]]:
        """resource id -> {key: value} for the account's tagged resources (all, or these)."""
        sql, params = "SELECT resource_id, key, value FROM resource_tags WHERE owner=?", [owner]
        if ids is not None:
            if not ids:
                return {}
            sql += f" AND resource_id IN ({','.join('?' * len(ids))})"
            params += ids
        out: dict[str, dict[str, str]] = {}
        for r in self.store.query(sql + " ORDER BY resource_id, key", tuple(params)):
            out.setdefault(r["resource_id"], {})[r["key"]] = r["value"]
        return out

    def set(self, owner: str, ids: list[str], tags: dict[str, str]) -> None:
        clean = validation.tags(tags)
        current = self.of(owner, ids)
        for rid in ids:
            validation.tags({**current.get(rid, {}), **clean})  # the 50-tag limit counts what is there
        with self.store.tx() as c:
            for rid in ids:
                for k, v in clean.items():
                    c.execute("INSERT INTO resource_tags (resource_id, owner, key, value) VALUES (?,?,?,?) "
                              "ON CONFLICT (resource_id, key) DO UPDATE SET value=excluded.value", (rid, owner, k, v))

    def delete(self, owner: str, ids: list[str], spec: dict[str, str | None]) -> None:
        """Remove the keys in `spec` (a value: only when it matches; None: any value); an
        empty spec removes every tag, as EC2's DeleteTags without Tag does."""
        with self.store.tx() as c:
            for rid in ids:
                if not spec:
                    c.execute("DELETE FROM resource_tags WHERE owner=? AND resource_id=?", (owner, rid))
                for k, v in spec.items():
                    if v is None:
                        c.execute("DELETE FROM resource_tags WHERE owner=? AND resource_id=? AND key=?",
                                  (owner, rid, k))
                    else:
                        c.execute("DELETE FROM resource_tags WHERE owner=? AND resource_id=? AND key=? AND value=?",
                                  (owner, rid, k, v))

    def prune(self, owner: str) -> None:
        """Interfaces and root volumes go with their instance's record (an hour after it is
        terminated); their tags go then too."""
        with self.store.tx() as c:
            c.execute("DELETE FROM resource_tags WHERE owner=? AND ("
                      "(resource_id LIKE 'eni-%' AND resource_id NOT IN (SELECT id FROM network_interfaces)) OR "
                      "(resource_id LIKE 'vol-%' AND resource_id NOT IN (SELECT id FROM volumes)))", (owner,))

    def forget(self, ids: list[str]) -> None:
        """Tags go with their resource."""
        if ids:
            with self.store.tx() as c:
                c.execute(f"DELETE FROM resource_tags WHERE resource_id IN ({','.join('?' * len(ids))})", tuple(ids))
