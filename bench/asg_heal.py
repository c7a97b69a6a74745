#!/usr/bin/env python3
"""Auto Scaling healing: a group member killed behind pocketcloud's back, until it is replaced.

For each kind, a group of three (a fresh server, tiny image): kill one member on the engine
directly (`docker kill` / `virsh destroy`), then measure
  - detection: kill -> the group's "Terminating EC2 instance" activity starts (server clock;
    the engine's own time to carry out the kill is reported beside it: `virsh destroy` of a
    TCG guest takes a second or more);
  - replacement: kill -> the group shows three members in service again, the victim gone
    (seen from boto3, polled every 50 ms).
The raw engine in the same run: dockerd itself never replaces a killed container (a restart
policy skips a container stopped by `docker kill`), so its baseline is the fastest possible
replacement by hand, `docker run -d` of the same image; for VMs a raw `virsh create` of the
same kernel and base disk until its SSH banner answers (bench/vm_boot.py's raw side).

    .venv/bin/python bench/asg_heal.py [--runs 5] [--vm-runs 2] [--kinds container,vm] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import boto3  # noqa: E402
import libvirt  # noqa: E402

from tests.integration.cloud import Server  # noqa: E402

POLL = 0.05


def clients(srv):
    api = srv.admin
    kw = dict(endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=api.key_id,
              aws_secret_access_key=api.secret)
    return api, boto3.client("ec2", **kw), boto3.client("autoscaling", **kw)


def serving(asg, name: str) -> list[str]:
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"
            and i["HealthStatus"] == "Healthy"]


def wait_serving(asg, name: str, n: int, timeout: float, without: str | None = None) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = serving(asg, name)
        if len(ids) == n and without not in ids:
            return ids
        time.sleep(POLL)
    raise TimeoutError(f"{name} did not reach {n} in service within {timeout}s")


def kill(kind: str, engine_id: str, docker_client, virt) -> None:
    if kind == "container":
        docker_client.api.kill(engine_id)
    else:
        virt.lookupByName(engine_id).destroy()


def heal_runs(srv, kind: str, runs: int) -> dict[str, list[float]]:
    import docker

    api, ec2, asg = clients(srv)
    dc, virt = docker.from_env(), libvirt.open("qemu:///system")
    ami = ec2.describe_images(Filters=[{"Name": "name", "Values": [f"tiny-{kind}"]}])["Images"][0]["ImageId"]
    name = f"bench-{kind}"
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami, "InstanceType": "t2.nano"})
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": name},
                                  MinSize=3, MaxSize=3, AvailabilityZones=["us-east-1a", "us-east-1b", "us-east-1c"])
    timeout = 60 if kind == "container" else 600
    out: dict[str, list[float]] = {"detection": [], "replacement": [], "kill": []}
    try:
        wait_serving(asg, name, 3, timeout)
        for run in range(runs):
            victim = serving(asg, name)[0]
            engine = api.ok("GET", f"/instances/{victim}")["engine"]["id"]
            t0 = time.time()
            kill(kind, engine, dc, virt)
            out["kill"].append(time.time() - t0)  # virsh destroy of a TCG guest takes a while itself
            wait_serving(asg, name, 3, timeout, without=victim)
            out["replacement"].append(time.time() - t0)
            acts = asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]
            term = next(a for a in acts if a["Description"] == f"Terminating EC2 instance: {victim}")
            out["detection"].append(term["StartTime"].timestamp() - t0)
            print(f"  {kind} run {run + 1}: detected {out['detection'][-1]:.2f}s, "
                  f"replaced {out['replacement'][-1]:.2f}s", file=sys.stderr)
    finally:
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        deadline = time.monotonic() + timeout
        while asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        ec2.delete_launch_template(LaunchTemplateName=name)
        dc.close()
        virt.close()
    return out


def raw_container(srv, runs: int) -> list[float]:
    api = srv.admin
    ref = next(i for i in api.ok("GET", "/images")["images"] if i["name"] == "tiny")["kinds"]["container"]["ref"]
    times, ids = [], []
    try:
        for _ in range(runs):
            t0 = time.time()
            ids.append(subprocess.run(["docker", "run", "-d", "--memory", "512m", "--cpus", "1", ref], check=True,
                                      capture_output=True, text=True).stdout.strip())
            times.append(time.time() - t0)
    finally:
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    return times


def raw_vm(srv, runs: int, scratch: Path) -> list[float]:
    from vm_boot import RawBoot

    api = srv.admin
    tiny = Path(next(i for i in api.ok("GET", "/images")["images"] if i["name"] == "tiny")["kinds"]["vm"]["ref"])
    conn = libvirt.open("qemu:///system")
    try:
        raw = RawBoot(conn, tiny, srv.vm_network, srv.vm_cidr, api.ok("GET", "/info")["hypervisor"], scratch)
        return [raw.boot() for _ in range(runs)]
    finally:
        conn.close()


def row(metric: str, ours: list[float], raw: list[float] | None, note: str) -> dict:
    p = statistics.median(ours)
    r = statistics.median(raw) if raw else None
    return {"metric": metric, "pocketcloud": round(p, 3), "raw": None if r is None else round(r, 3),
            "ratio": None if not r else round(p / r, 2), "unit": "s", "note": note}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5, help="kills per container group")
    ap.add_argument("--vm-runs", type=int, default=2, help="kills per VM group")
    ap.add_argument("--kinds", default="container,vm")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "home", Path(tmp))
        srv.cli("images", "build", "tiny")
        srv.start()
        try:
            for kind in args.kinds.split(","):
                runs = args.runs if kind == "container" else args.vm_runs
                heal = heal_runs(srv, kind, runs)
                raw = raw_container(srv, runs) if kind == "container" else raw_vm(srv, runs, Path(tmp))
                engine = "docker kill" if kind == "container" else "virsh destroy"
                rows.append(row(f"{kind}: detection ({engine} -> terminating activity)", heal["detection"],
                                None, f"median of {runs}; the engine alone never notices; {engine} itself took "
                                f"{statistics.median(heal['kill']):.2f}s"))
                rows.append(row(f"{kind}: replacement (kill -> group back in service)", heal["replacement"], raw,
                                f"median of {runs}; raw: {'docker run -d' if kind == 'container' else 'virsh create until SSH banner'} "
                                "of the same image"))
        finally:
            srv.stop()
    width = max(len(r["metric"]) for r in rows)
    print(f"{'metric'.ljust(width)}  pocketcloud      raw   ratio")
    for r in rows:
        raw = "-" if r["raw"] is None else f"{r['raw']:.2f}s"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['metric'].ljust(width)}  {r['pocketcloud']:>10.2f}s {raw:>8} {ratio:>7}   {r['note']}")
    if args.json:
        args.json.write_text(json.dumps({"bench": "asg_heal", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
