#!/usr/bin/env python3
"""Container start: POST /instances through a real `pocketcloud serve` vs the Docker SDK
with a warm client (what an efficient tool does), same image, same limits, same run.

Both sides: the tiny container image, 1 vCPU and 512 MiB (t2.nano), no published port;
one warm-up run each (not counted), then runs interleaved so host drift hits both alike;
each container is removed after its run, outside the clock, so every start meets the same
host. Clock: from the request until the container runs (pocketcloud answers 201 once it
runs; the SDK side is create + start + reload, as pocketcloud itself does it).
Also: GET /instances latency with a fleet of instances (no raw counterpart).

    .venv/bin/python bench/container_start.py [--runs 15] [--fleet 100] [--json PATH]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import emit, row  # noqa: E402
from emulator.compute.types import INSTANCE_TYPES  # noqa: E402
from tests.integration.cloud import Server  # noqa: E402

TYPE = INSTANCE_TYPES["t2.nano"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--fleet", type=int, default=100)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    if args.runs < 10:
        ap.error("--runs must be at least 10 (medians of fewer runs are noise here)")
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "home", Path(tmp))
        srv.cli("images", "build", "tiny")
        srv.start()
        api = srv.admin
        made: list[str] = []
        try:
            ref = next(i for i in api.ok("GET", "/images")["images"] if i["name"] == "tiny")["kinds"]["container"]["ref"]

            def via_api() -> float:
                t = time.perf_counter()
                inst = api.ok("POST", "/instances", 201, json={"image": "tiny", "type": TYPE.name})
                while inst["state"] != "running":
                    inst = api.ok("GET", f"/instances/{inst['id']}")
                took = time.perf_counter() - t
                api.ok("DELETE", f"/instances/{inst['id']}")
                return took

            def via_sdk() -> float:
                t = time.perf_counter()
                c = client.containers.create(ref, detach=True, mem_limit=f"{TYPE.memory_mib}m",
                                             memswap_limit=f"{TYPE.memory_mib}m", nano_cpus=TYPE.vcpus * 10**9)
                c.start()
                c.reload()
                assert c.status == "running", c.status
                took = time.perf_counter() - t
                c.remove(force=True)
                return took

            via_api(), via_sdk()  # warm-up: page cache, connection pools, dockerd's image metadata
            api_t, raw_t = [], []
            for i in range(args.runs):
                for side in (("api", "sdk") if i % 2 == 0 else ("sdk", "api")):
                    (api_t if side == "api" else raw_t).append(via_api() if side == "api" else via_sdk())
                print(f"  run {i + 1}: pocketcloud {api_t[-1]:.3f}s, docker SDK {raw_t[-1]:.3f}s", flush=True)
            a, r = statistics.median(api_t), statistics.median(raw_t)
            rows = [row("container start to running (median)", a, r, "s",
                        f"median of {args.runs}; pocketcloud {min(api_t):.3f}-{max(api_t):.3f}, "
                        f"SDK {min(raw_t):.3f}-{max(raw_t):.3f}; both warm")]

            while len(made) < args.fleet:
                made.append(api.ok("POST", "/instances", 201, json={"image": "tiny", "type": TYPE.name})["id"])
            lat = []
            for _ in range(50):
                t = time.perf_counter()
                api.ok("GET", "/instances")
                lat.append(time.perf_counter() - t)
            rows.append(row(f"GET /instances with {len(made)} instances (median of 50)",
                            statistics.median(lat) * 1000, None, "ms", "no raw counterpart"))
            emit("container_start", rows, args.json)
        finally:
            for iid in made:
                api("DELETE", f"/instances/{iid}")
            srv.stop()


if __name__ == "__main__":
    main()
