#!/usr/bin/env python3
"""EC2 API overhead: RunInstances-to-running through boto3 vs POST /instances through
REST, same container image, same run (target ratio <= 1.1); DescribeInstances latency
with 200 instances known (terminated ones included).
Usage: .venv/bin/python bench/ec2_api.py [--runs 10] [--known 200] [--json PATH]

There is no raw engine under an API call: the EC2 path's baseline is the REST path, which
does the same launch through the same service.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.cloud import Server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--known", type=int, default=200)
    ap.add_argument("--json", type=Path, help="also write the figures here (bench convention: rows)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "home", Path(tmp))
        srv.cli("images", "build", "tiny")
        srv.start()
        api = srv.admin
        ec2 = boto3.client("ec2", endpoint_url=srv.url, region_name="us-east-1",
                           aws_access_key_id=api.key_id, aws_secret_access_key=api.secret)
        made: list[str] = []
        try:
            ami = ec2.describe_images(Filters=[{"Name": "name", "Values": ["tiny-container"]}])["Images"][0]["ImageId"]

            def via_ec2() -> float:
                t = time.perf_counter()
                iid = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
                ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.05, "MaxAttempts": 2000})
                made.append(iid)
                return time.perf_counter() - t

            def via_rest() -> float:
                t = time.perf_counter()
                inst = api.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})
                while inst["state"] != "running":
                    inst = api.ok("GET", f"/instances/{inst['id']}")
                made.append(inst["id"])
                return time.perf_counter() - t

            via_ec2(), via_rest()  # warm both paths (connection pools, boto3 model loading)
            e, r = [], []
            for _ in range(args.runs):
                e.append(via_ec2())
                r.append(via_rest())
            me, mr = statistics.median(e), statistics.median(r)
            print(f"run-to-running, median of {args.runs}:")
            print(f"  boto3 RunInstances + waiter : {me:.3f} s")
            print(f"  REST POST /instances        : {mr:.3f} s")
            print(f"  ratio                       : {me / mr:.2f}  (target <= 1.1)")

            for iid in made[: len(made) // 2]:
                api("DELETE", f"/instances/{iid}")  # terminated ones stay known for an hour
            while len(made) < args.known:
                made.append(api.ok("POST", "/instances", 201, json={"image": "tiny", "type": "t2.nano"})["id"])
                if len(made) % 2:
                    api("DELETE", f"/instances/{made[-1]}")
            lat = []
            for _ in range(30):
                t = time.perf_counter()
                n = sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"])
                lat.append(time.perf_counter() - t)
            print(f"DescribeInstances with {n} instances known (terminated included), median of 30: "
                  f"{statistics.median(lat) * 1000:.1f} ms")
            if args.json:
                rows = [
                    {"metric": f"RunInstances to running (median of {args.runs})", "pocketcloud": round(me, 3),
                     "raw": round(mr, 3), "ratio": round(me / mr, 3), "unit": "s",
                     "note": "raw = REST POST /instances to running, same image and type; target <= 1.1"},
                    {"metric": f"DescribeInstances, {n} instances known (median of 30)",
                     "pocketcloud": round(statistics.median(lat) * 1000, 1), "raw": None, "ratio": None,
                     "unit": "ms", "note": "terminated instances included"},
                ]
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"bench": "ec2_api", "rows": rows}, indent=2))
        finally:
            for iid in made:
                api("DELETE", f"/instances/{iid}")
            srv.stop()


if __name__ == "__main__":
    main()
