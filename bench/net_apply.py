#!/usr/bin/env python3
"""VPC firewall cost: one security-group change applied as a full, atomic reconcile of the
cloud's nftables tables (what Firewall.apply does on every Authorize/Revoke) for clouds of
10, 50 and 200 instances, against the raw engine's floor: one `nft add rule` through the
same CLI. Kernel objects only (interfaces named in the rules need not exist), removed at
the end; run as root.
Usage: .venv/bin/python bench/net_apply.py [--runs 10] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.networks import ipam  # noqa: E402
from emulator.networks.firewall import Firewall  # noqa: E402
from emulator.networks.model import Desired, Group, Port, Rule, Subnet, Vpc  # noqa: E402


def hexid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def cloud(n: int) -> tuple[Desired, Group]:
    """n instances in 4 subnets of one VPC, 3 groups with a few rules each, one group-to-group."""
    vpc = Vpc(hexid("vpc"), "10.120.0.0/16")
    subnets = [Subnet(hexid("subnet"), vpc.id, f"10.120.{i}.0/24") for i in range(4)]
    web = Group(hexid("sg"), vpc.id, ingress=(Rule("tcp", 80, 80, peer_cidr="0.0.0.0/0"),
                                              Rule("tcp", 443, 443, peer_cidr="0.0.0.0/0")),
                egress=(Rule("all", peer_cidr="0.0.0.0/0"),))
    db = Group(hexid("sg"), vpc.id, ingress=(Rule("tcp", 5432, 5432, peer_group=web.id),),
               egress=(Rule("all", peer_cidr="0.0.0.0/0"),))
    dflt = Group(hexid("sg"), vpc.id, egress=(Rule("all", peer_cidr="0.0.0.0/0"),))
    dflt = Group(dflt.id, vpc.id, ingress=(Rule("all", peer_group=dflt.id),), egress=dflt.egress)
    ports = []
    for i in range(n):
        sub = subnets[i % 4]
        ip = ipam.allocate_address(sub.cidr, [p.ip for p in ports])
        groups = (dflt.id, web.id if i % 3 else db.id)
        ports.append(Port(hexid("i"), sub.id, ip, "02:00:" + ":".join(f"{(i >> s) & 255:02x}" for s in (24, 16, 8, 0)),
                          groups, f"pcbench{i}"))
    return Desired((vpc,), tuple(subnets), (web, db, dflt), tuple(ports), imds_port=9999), web


def raw_floor(runs: int) -> float:
    table = f"pcbenchraw{secrets.token_hex(3)}"
    subprocess.run(["nft", "add", "table", "inet", table], check=True)
    subprocess.run(["nft", "add", "chain", "inet", table, "c"], check=True)
    times = []
    try:
        for i in range(runs):
            t = time.perf_counter()
            subprocess.run(["nft", "add", "rule", "inet", table, "c", "tcp", "dport", str(1000 + i), "accept"],
                           check=True)
            times.append(time.perf_counter() - t)
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], check=True)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    raw = raw_floor(args.runs)
    rows = []
    for n in (10, 50, 200):
        fw = Firewall("bench" + secrets.token_hex(4))
        desired, web = cloud(n)
        try:
            fw.reconcile(desired)
            times = []
            for i in range(args.runs):
                extra = Rule("tcp", 2000 + i, 2000 + i, peer_cidr="10.0.0.0/8")
                changed = Desired(desired.vpcs, desired.subnets,
                                  tuple(Group(g.id, g.vpc_id, g.ingress + ((extra,) if g.id == web.id else ()),
                                              g.egress) for g in desired.groups),
                                  desired.ports, imds_port=desired.imds_port)
                times.append(fw.apply(changed)["seconds"])
            summary = fw.apply(desired)
        finally:
            fw.remove()
        med = statistics.median(times)
        rows.append({"metric": f"authorize (full atomic reconcile), {n} instances", "pocketcloud": med, "raw": raw,
                     "ratio": med / raw, "unit": "s",
                     "note": f"{summary['rules']} rules, {summary['commands']} nft commands; raw = one nft add rule"})
    print(f"{'metric':52} {'pocketcloud':>12} {'raw nft':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['metric']:52} {r['pocketcloud'] * 1000:9.1f} ms {r['raw'] * 1000:6.1f} ms {r['ratio']:6.1f}  {r['note']}")
    if args.json:
        args.json.write_text(json.dumps({"bench": "net_apply", "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
