"""Makes the kernel's rules match a cloud's desired network state, in one atomic step.

`Firewall(label).apply(desired)` is the only write: it reads what the cloud's two tables
hold, then sends ONE `nft -j -f -` batch (one netlink transaction, so packets see the old
ruleset or the new one, never half of each) that empties every chain and set, deletes
objects no longer wanted, and adds the wanted ones. Applying the same state twice changes
nothing that matters; applying after a crash or a hand edit repairs the tables; a restarted
server calls it once with the state from its database (that is `reconcile`). Named counters
are kept across applies, so per-rule counters keep counting while rules change around them.

The JSON interface of nft (no rule strings) is used because every value is then data, not
syntax: a hostile group description cannot inject a rule. The `nftables` Python binding is
not importable from a venv (Debian ships it for the system Python only), hence the CLI.
"""
from __future__ import annotations

import fcntl
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import EngineError, NotFound
from . import dockeruser, host, model, rules
from .model import Desired
from .rules import Table


def nft(commands: list[dict], *, check: bool = True) -> list[dict]:
    """Runs one nft JSON batch; returns the objects it printed (for list commands)."""
    proc = host.run(["nft", "-j", "-f", "-"], input=json.dumps({"nftables": commands}), check=False)
    if check and proc.returncode != 0:
        raise EngineError(f"nft refused the batch: {proc.stderr.strip()[-800:]}")
    out = proc.stdout.strip()
    return json.loads(out).get("nftables", []) if out else []


class Firewall:
    """One cloud's nftables tables (`inet` and `bridge` `pc-<label>`) and its DOCKER-USER chain."""

    FAMILIES = ("inet", "bridge")

    def __init__(self, label: str):
        self.label = model.label(label)
        self.table = rules.table_name(label)
        self.last_apply_seconds: float | None = None
        self._synced_bridges: list[str] | None = None
        self._docker_user = False

    # ---- writing -----------------------------------------------------------------
    def apply(self, desired: Desired) -> dict[str, Any]:
        """Rewrites both tables to match `desired` atomically; returns a small summary."""
        t0 = time.perf_counter()
        desired.check()
        inet, bridge = rules.build(self.label, desired)
        with self._lock():  # two workers applying at once would each delete what the other re-read
            current = self._current()
            batch: list[dict] = []
            for t in (inet, bridge):
                batch += self._commands(t, current.get(t.family, {}))
            nft(batch)
            bridges = sorted(s.bridge for s in desired.subnets)
            if bridges != self._synced_bridges:  # DOCKER-USER only changes with the set of bridges
                self._docker_user = dockeruser.sync(self.label, bridges)
                self._synced_bridges = bridges
        self.last_apply_seconds = time.perf_counter() - t0
        return {"rules": len(inet.rules) + len(bridge.rules), "commands": len(batch), "docker_user": self._docker_user,
                "seconds": round(self.last_apply_seconds, 4)}

    def reconcile(self, desired: Desired) -> dict[str, Any]:
        """apply() after a (re)start or on suspicion: also rewrites the DOCKER-USER chain, which
        apply() leaves alone while the set of bridges is unchanged."""
        self._synced_bridges = None
        return self.apply(desired)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        path = Path(tempfile.gettempdir()) / f"pocketcloud-net-{self.label}.lock"
        with open(path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def repin(self, desired: Desired, instance_id: str, ifname: str | None) -> Desired:
        """Pins an instance's port to a new host interface (a container's veth after a restart,
        since Docker names veths at random) and applies; returns the updated desired state."""
        if not any(p.instance_id == instance_id for p in desired.ports):
            raise NotFound(f"no port of {instance_id} in the desired state", code="InvalidInstanceID.NotFound")
        ports = tuple(replace(p, ifname=ifname) if p.instance_id == instance_id else p for p in desired.ports)
        new = replace(desired, ports=ports)
        self.apply(new)
        return new

    def remove(self) -> None:
        """Deletes the cloud's tables and its DOCKER-USER chain (idempotent)."""
        with self._lock():
            existing = self._current()
            if existing:
                nft([{"delete": {"table": {"family": f, "name": self.table}}} for f in existing])
            dockeruser.remove(self.label)
            self._synced_bridges = None
        (Path(tempfile.gettempdir()) / f"pocketcloud-net-{self.label}.lock").unlink(missing_ok=True)

    # ---- reading -----------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self._current())

    def counters(self) -> dict[str, dict[str, int]]:
        """Every named counter of the cloud: name -> {packets, bytes} (both tables)."""
        out: dict[str, dict[str, int]] = {}
        for fam in self._current():
            for obj in nft([{"list": {"counters": {"family": fam, "table": self.table}}}]):
                c = obj.get("counter")
                if c and c.get("table") == self.table:
                    out[c["name"] if fam == "inet" else f"bridge:{c['name']}"] = {
                        "packets": c["packets"], "bytes": c["bytes"]}
        return out

    def group_counters(self, group: model.Group, counters: dict | None = None) -> list[dict[str, Any]]:
        """One row per rule of a security group with the packets/bytes it accepted so far."""
        counters = self.counters() if counters is None else counters
        rows = []
        for direction, rs in (("in", group.ingress), ("out", group.egress)):
            for r in rs:
                c = counters.get(rules.counter_name(group.id, direction, r), {"packets": 0, "bytes": 0})
                rows.append({"direction": "ingress" if direction == "in" else "egress", "rule": r.summary(),
                             "key": r.key, **c})
        return rows

    def ruleset(self) -> str:
        """The tables as `nft list` prints them (for internals and `pocketcloud explain`)."""
        out = []
        for fam in self._current():
            out.append(host.run(["nft", "list", "table", fam, self.table]).stdout)
        return "\n".join(out)

    # ---- internals ----------------------------------------------------------------
    def _current(self) -> dict[str, dict[str, dict]]:
        """family -> {'chains': {name: base spec|None}, 'sets': {name: spec}, 'counters': {name}} for
        the tables that exist."""
        objs: list[dict] = []
        have = []
        for fam in self.FAMILIES:  # nft 1.0.6 cannot list two tables in one batch
            proc = host.run(["nft", "-j", "list", "table", fam, self.table], check=False)
            if proc.returncode == 0:
                have.append(fam)
                objs += json.loads(proc.stdout).get("nftables", [])
            elif "No such file" not in proc.stderr:
                raise EngineError(f"nft cannot list table {fam} {self.table}: {proc.stderr.strip()[-400:]}")
        cur: dict[str, dict[str, dict]] = {f: {"chains": {}, "sets": {}, "counters": {}} for f in have}
        for o in objs:
            kind, body = next(iter(o.items()))
            if not isinstance(body, dict) or body.get("table") != self.table or body.get("family") not in cur:
                continue
            bucket = cur[body["family"]]
            if kind == "chain":
                bucket["chains"][body["name"]] = ({k: body.get(k) for k in ("type", "hook", "prio", "policy")}
                                                  if "hook" in body else None)
            elif kind in ("set", "map"):
                bucket["sets"][body["name"]] = _set_spec(kind, body)
            elif kind == "counter":
                bucket["counters"][body["name"]] = {}
        return cur

    def _commands(self, t: Table, cur: dict[str, dict]) -> list[dict]:
        fam, name = t.family, t.name
        ref = {"family": fam, "table": name}
        have_chains, have_sets, have_counters = cur.get("chains", {}), cur.get("sets", {}), cur.get("counters", {})
        cmds: list[dict] = [{"add": {"table": {"family": fam, "name": name}}}]
        if cur:
            cmds.append({"flush": {"table": {"family": fam, "name": name}}})
        keep_sets = {n for n, spec in have_sets.items() if t.sets.get(n) == spec}
        for n in sorted(keep_sets):
            cmds.append({"flush": {t.sets[n]["kind"]: {**ref, "name": n}}})
        for n, spec in have_sets.items():
            if n not in keep_sets:
                cmds.append({"delete": {spec["kind"]: {**ref, "name": n}}})
        for n, spec in have_chains.items():
            if n not in t.chains or t.chains[n] != spec:
                cmds.append({"delete": {"chain": {**ref, "name": n}}})
        for n in have_counters:
            if n not in t.counters:
                cmds.append({"delete": {"counter": {**ref, "name": n}}})
        for n, spec in t.chains.items():
            body = {**ref, "name": n}
            if spec and have_chains.get(n) != spec:
                body.update(spec)
            elif spec:
                continue  # an existing base chain keeps its hook; re-adding it changes nothing
            cmds.append({"add": {"chain": body}})
        for n in t.counters:
            cmds.append({"add": {"counter": {**ref, "name": n}}})
        for n, spec in t.sets.items():
            if n not in keep_sets:
                body = {**ref, "name": n, "type": spec["type"]}
                if "flags" in spec:
                    body["flags"] = spec["flags"]
                if "map" in spec:
                    body["map"] = spec["map"]
                cmds.append({"add": {spec["kind"]: body}})
        for n, elems in t.elements.items():
            if elems:
                cmds.append({"add": {"element": {**ref, "name": n, "elem": elems}}})
        for chain, expr, comment in t.rules:
            body = {**ref, "chain": chain, "expr": expr}
            if comment:
                body["comment"] = comment
            cmds.append({"add": {"rule": body}})
        return cmds


def _set_spec(kind: str, body: dict) -> dict:
    spec: dict = {"kind": kind, "type": body["type"]}
    if body.get("flags"):
        spec["flags"] = body["flags"] if isinstance(body["flags"], list) else [body["flags"]]
    if kind == "map":
        spec["map"] = body["map"]
    return spec
