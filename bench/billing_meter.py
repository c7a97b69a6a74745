#!/usr/bin/env python3
"""What metering costs: one metering pass over N running containers (usage rows, marks, the
engines' CPU/memory/network read from cgroupfs) against reading the same numbers the obvious
way, `docker stats` through the Docker SDK (one call per container), in the same run.
Also: the per-container probe alone, and a month's bill (GetCostAndUsage) over the result.

Usage: .venv/bin/python bench/billing_meter.py [--containers 10] [--passes 20] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.billing import clock as clk  # noqa: E402
from emulator.config import Config  # noqa: E402
from emulator.services import Cloud  # noqa: E402


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=10)
    ap.add_argument("--passes", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # The meter, not the network, is measured: no bridges or kernel rules for a throwaway cloud
        cloud = Cloud(Config(home=Path(tmp) / "home", time_scale="3600", vpc_networking="off"))
        admin = cloud.bootstrap()
        cloud.images.build("tiny", progress=lambda line: None)
        docker = cloud.drivers["container"].client
        made = []
        try:
            for _ in range(args.containers):
                made.append(cloud.run_instance(admin, image="tiny", type="t2.nano"))
            meter = cloud.billing.meter
            meter.run_pass(probe_engines=True)
            passes = [timed(lambda: meter.run_pass(probe_engines=True)) for _ in range(args.passes)]
            containers = [docker.containers.get(i.engine_id) for i in made]
            raw = [timed(lambda: [c.stats(stream=False, one_shot=True) for c in containers])
                   for _ in range(max(3, args.passes // 5))]
            probe = [timed(lambda: [meter.probe.sample("container", i.engine_id) for i in made])
                     for _ in range(args.passes)]
            now = cloud.billing.clock.now()
            a = clk.month_start(now)
            bill = [timed(lambda: cloud.billing.reports.cost_and_usage(
                accounts=None, start=clk.day(a), end=clk.day(clk.add_months(a, 1)), granularity="DAILY",
                metrics=["UnblendedCost"], group_by=[{"Type": "DIMENSION", "Key": "SERVICE"}]))
                for _ in range(args.passes)]
            usage_rows = cloud.store.one("SELECT COUNT(*) AS n FROM usage")["n"]
        finally:
            for i in made:
                cloud.terminate_instance(admin, i.id)
    p, r = statistics.median(passes), statistics.median(raw)
    pr = statistics.median(probe) / len(made)
    rows = [
        {"metric": f"metering pass, {len(made)} containers", "pocketcloud": p, "raw": r, "ratio": p / r, "unit": "s",
         "note": "raw = docker stats (SDK, one_shot) per container, nothing written"},
        {"metric": "engine probe per container", "pocketcloud": pr, "raw": r / len(made), "ratio": pr / (r / len(made)),
         "unit": "s", "note": "cgroupfs + /proc/PID/net/dev vs docker stats"},
        {"metric": f"GetCostAndUsage, a month by service ({usage_rows} usage rows)",
         "pocketcloud": statistics.median(bill), "raw": None, "ratio": None, "unit": "s", "note": ""},
    ]
    width = max(len(x["metric"]) for x in rows)
    print(f"{'metric':{width}}  {'pocketcloud':>12}  {'raw':>10}  {'ratio':>7}")
    for x in rows:
        raw_s = f"{x['raw']:.4f}" if x["raw"] is not None else "-"
        ratio = f"{x['ratio']:.3f}" if x["ratio"] is not None else "-"
        print(f"{x['metric']:{width}}  {x['pocketcloud']:>12.4f}  {raw_s:>10}  {ratio:>7}  {x['note']}")
    if args.json:
        args.json.write_text(json.dumps({"bench": "billing_meter", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
