#!/usr/bin/env python3
"""Images of one's own (containers): CreateImage of a running container, and a launch from
that image, against the same steps by hand on dockerd in the same run.

A fresh server (tiny image), one running container with 64 MiB written to its root, measured
through boto3:
  - CreateImage (NoReboot) until it answers (the image is `available` then) vs `docker commit`
    of a container of the same image holding the same 64 MiB;
  - RunInstances from that image until the instance runs vs the same from the catalog's
    tiny-container (what an image of one's own adds to a launch: nothing but a lookup);
  - DeregisterImage + DeleteSnapshot vs `docker rmi`.

    .venv/bin/python bench/images.py [--runs 3] [--json PATH]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
import docker  # noqa: E402

from bench.report import emit, row  # noqa: E402
from tests.integration.cloud import Server, remove_leftovers, remove_volume_pool  # noqa: E402

FILL = "dd if=/dev/urandom of=/root/fill bs=1M count=64 2>/dev/null && sync"


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def launch(ec2, image_id: str) -> tuple[float, str]:
    t = time.perf_counter()
    iid = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    while ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] != "running":
        time.sleep(0.05)
    return time.perf_counter() - t, iid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="pc-bench-images-"))
    srv = Server(scratch / "home", scratch)
    srv.cli("images", "build", "tiny")
    srv.start()
    client = docker.from_env()
    rows, made = [], []
    try:
        api = srv.admin
        ec2 = boto3.client("ec2", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                           aws_secret_access_key=api.secret)
        tiny = ec2.describe_images(Filters=[{"Name": "name", "Values": ["tiny-container"]}])["Images"][0]
        src = ec2.run_instances(ImageId=tiny["ImageId"], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        made.append(src)
        api.ok("POST", f"/instances/{src}/exec", json={"command": FILL, "timeout": 120})
        ref = client.containers.get(f"pc-{src}").image.id  # the catalog image it runs
        raw_ct = client.containers.run(ref, detach=True)
        raw_ct.exec_run(["sh", "-c", FILL])

        create, raw_commit, own_launch, cat_launch, drop, raw_rmi = [], [], [], [], [], []
        for i in range(args.runs):
            t, out = timed(lambda: ec2.create_image(InstanceId=src, Name=f"bench {i}", NoReboot=True))
            create.append(t)
            ami = out["ImageId"]
            t, img = timed(lambda: raw_ct.commit(repository="pc-bench-images", tag=str(i)))
            raw_commit.append(t)
            t, iid = launch(ec2, ami)
            own_launch.append(t)
            made.append(iid)
            t, iid = launch(ec2, tiny["ImageId"])
            cat_launch.append(t)
            made.append(iid)
            ec2.terminate_instances(InstanceIds=made[-2:])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=made[-2:], WaiterConfig={"Delay": 1})
            del made[-2:]
            sid = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
            t, _ = timed(lambda: (ec2.deregister_image(ImageId=ami), ec2.delete_snapshot(SnapshotId=sid)))
            drop.append(t)
            t, _ = timed(lambda: client.images.remove(img.id, force=True))
            raw_rmi.append(t)
        rows.append(row("CreateImage of a running container (64 MiB written)", statistics.median(create),
                        statistics.median(raw_commit), "s", f"median of {args.runs}; raw: docker commit"))
        rows.append(row("RunInstances from an image of one's own, until running", statistics.median(own_launch),
                        statistics.median(cat_launch), "s", "raw column: the same launch from the catalog's image"))
        rows.append(row("DeregisterImage + DeleteSnapshot", statistics.median(drop), statistics.median(raw_rmi), "s",
                        "raw: docker rmi"))
        raw_ct.remove(force=True)
        ec2.terminate_instances(InstanceIds=made)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=made, WaiterConfig={"Delay": 1})
        made.clear()
        emit("images", rows, args.json)
    finally:
        srv.stop()
        remove_leftovers(srv, client)
        remove_volume_pool(srv)
        subprocess.run(["rm", "-rf", str(scratch)])


if __name__ == "__main__":
    main()
