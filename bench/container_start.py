#!/usr/bin/env python3
"""Container start through pocketcloud vs plain `docker run -d`, same image, same run.

Prints: median seconds POST /instances -> running, median `docker run -d` -> running,
the ratio (target <= 1.3), and median GET /instances latency with 100 instances.
Usage: .venv/bin/python bench/container_start.py [--runs 10] [--fleet 100]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.cloud import Server  # noqa: E402


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--fleet", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "home", Path(tmp))
        srv.cli("images", "build", "tiny")
        srv.start()
        api = srv.admin
        made: list[str] = []
        try:
            ref = next(i for i in api.ok("GET", "/images")["images"] if i["name"] == "tiny")["kinds"]["container"]["ref"]

            def via_api():
                inst = api.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})
                while inst["state"] != "running":
                    inst = api.ok("GET", f"/instances/{inst['id']}")
                made.append(inst["id"])

            raw_ids: list[str] = []

            def via_docker():
                out = subprocess.run(["docker", "run", "-d", "--memory", "512m", "--cpus", "1", ref],
                                     check=True, capture_output=True, text=True).stdout.strip()
                raw_ids.append(out)

            api_t, raw_t = [], []
            for _ in range(args.runs):  # interleaved so drift hits both alike
                api_t.append(timed(via_api))
                raw_t.append(timed(via_docker))
            subprocess.run(["docker", "rm", "-f", *raw_ids], check=True, capture_output=True)
            a, r = statistics.median(api_t), statistics.median(raw_t)
            print(f"container start, median of {args.runs}:")
            print(f"  pocketcloud POST /instances -> running : {a:.3f} s")
            print(f"  docker run -d                         : {r:.3f} s")
            print(f"  ratio                                 : {a / r:.2f}  (target <= 1.3)")

            while len(made) < args.fleet:
                made.append(api.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})["id"])
            lat = [timed(lambda: api.ok("GET", "/instances")) for _ in range(50)]
            print(f"GET /instances with {len(made)} instances, median of 50: {statistics.median(lat) * 1000:.1f} ms")
        finally:
            for iid in made:
                api("DELETE", f"/instances/{iid}")
            srv.stop()


if __name__ == "__main__":
    main()
