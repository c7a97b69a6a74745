#!/usr/bin/env python3
"""Block storage: attaching volumes, snapshotting 1 GiB, a volume from that snapshot.

A fresh server (tiny image), measured through boto3 against the same steps done by hand on
the raw engines in the same run:
  - attach to a running VM: AttachVolume until it answers (the disk is hot-plugged when it
    does) vs libvirt's attachDeviceFlags of the same disk XML on the same domain;
  - attach to a running container: AttachVolume (export, filesystem check, loop mount) vs
    the same qemu-storage-daemon export and `mount -o loop` by hand;
  - snapshot of a 1 GiB volume (1 GiB written with qemu-io's pattern, so every cluster is
    allocated), detached, and attached to a running VM (a libvirt push backup), vs
    `qemu-img convert` of the file;
  - a volume from that snapshot (CreateVolume SnapshotId) vs `qemu-img convert`.

    flock /tmp/pc-heavy.lock .venv/bin/python bench/volumes.py [--runs 3] [--no-vm] [--json PATH]

--no-vm leaves out the VM rows (no guest boots: a light run).
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
import libvirt  # noqa: E402

from bench.report import emit, row  # noqa: E402
from emulator.compute.libvirt.disks import disk_xml  # noqa: E402
from tests.integration.cloud import Server, remove_leftovers, remove_volume_pool, vm_area  # noqa: E402

GIB = 1 << 30


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def wait_state(ec2, vid: str, state: str) -> None:
    while ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["State"] != state:
        time.sleep(0.05)


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def fill(path: Path, size: int) -> None:
    run(["qemu-io", "-f", "qcow2", "-c", f"write -P 0x5a 0 {size}", str(path)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--no-vm", action="store_true", help="containers and detached volumes only")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="pc-bench-volumes-"))
    srv = Server(scratch / "home", scratch)
    srv.cli("images", "build", "tiny")
    srv.start()
    rows = []
    try:
        api = srv.admin
        ec2 = boto3.client("ec2", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                           aws_secret_access_key=api.secret)
        vm = None if args.no_vm else api.launch_vm(image="tiny", type="t2.nano")
        ct = api.ok("POST", "/instances", 201, json={"kind": "container", "image": "tiny"})
        pool = vm_area(srv.home) / "volumes"
        vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]

        # -- attach, VM and container, each against the same steps by hand --
        vm_attach, ct_attach = [], []
        for _ in range(args.runs):
            if vm:
                vm_attach.append(timed(lambda: ec2.attach_volume(VolumeId=vid, InstanceId=vm["id"],
                                                                 Device="/dev/sdf")))
                ec2.detach_volume(VolumeId=vid)
                wait_state(ec2, vid, "available")
            ct_attach.append(timed(lambda: ec2.attach_volume(VolumeId=vid, InstanceId=ct["id"], Device="/dev/sdf")))
            ec2.detach_volume(VolumeId=vid)
            wait_state(ec2, vid, "available")
        raw_vm, raw_ct = [], []
        dom = libvirt.open("qemu:///system").lookupByName(f"pc-{vm['id']}") if vm else None
        spare = scratch / "raw.qcow2"
        run(["qemu-img", "create", "-q", "-f", "qcow2", str(spare), "1G"])
        xml = disk_xml(spare, "vdz", "rawbench")
        mnt, raw_file = scratch / "mnt", scratch / "raw.img"
        mnt.mkdir()
        for _ in range(args.runs):
            if dom:
                raw_vm.append(timed(lambda: dom.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)))
                dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
                while "rawbench" in dom.XMLDesc(0):
                    time.sleep(0.05)

            def by_hand():
                raw_file.touch()
                run(["qemu-storage-daemon", "--blockdev", f"driver=file,node-name=f,filename={pool / (vid + '.qcow2')}",
                     "--blockdev", "driver=qcow2,node-name=q,file=f", "--export",
                     f"type=fuse,id=e,node-name=q,mountpoint={raw_file},writable=on",
                     "--pidfile", str(scratch / "raw.pid"), "--daemonize"])
                run(["blkid", "-p", str(raw_file)])
                run(["mount", "-o", "loop", str(raw_file), str(mnt)])
            raw_ct.append(timed(by_hand))
            run(["umount", str(mnt)])
            run(["kill", (scratch / "raw.pid").read_text().strip()])
            while raw_file.stat().st_size:
                time.sleep(0.05)
        if vm:
            rows.append(row("attach a volume to a running VM", statistics.median(vm_attach),
                            statistics.median(raw_vm), "s",
                            f"median of {args.runs}; raw: attachDeviceFlags of the same disk XML"))
        rows.append(row("attach a volume to a running container", statistics.median(ct_attach),
                        statistics.median(raw_ct), "s",
                        f"median of {args.runs}; raw: qemu-storage-daemon export + blkid + mount -o loop"))

        # -- 1 GiB snapshot and a volume from it --
        ec2.delete_volume(VolumeId=vid)
        big = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
        fill(pool / f"{big}.qcow2", GIB)
        snap_t, restore_t, raw_snap, raw_restore, snaps, made = [], [], [], [], [], []
        for i in range(args.runs):
            t = time.perf_counter()
            snaps.append(ec2.create_snapshot(VolumeId=big)["SnapshotId"])
            snap_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            made.append(ec2.create_volume(AvailabilityZone="us-east-1a", SnapshotId=snaps[-1])["VolumeId"])
            restore_t.append(time.perf_counter() - t)
            out = scratch / f"raw-snap-{i}.qcow2"
            raw_snap.append(timed(lambda: run(["qemu-img", "convert", "-O", "qcow2", str(pool / f"{big}.qcow2"),
                                               str(out)])))
            raw_restore.append(timed(lambda: run(["qemu-img", "convert", "-O", "qcow2", str(out),
                                                  str(scratch / f"raw-vol-{i}.qcow2")])))
        rows.append(row("snapshot of a 1 GiB volume (detached)", statistics.median(snap_t),
                        statistics.median(raw_snap), "s", "1 GiB written; raw: qemu-img convert of the file"))
        rows.append(row("volume from that snapshot", statistics.median(restore_t), statistics.median(raw_restore),
                        "s", "a full copy into the pool; raw: qemu-img convert"))
        if vm:
            ec2.attach_volume(VolumeId=big, InstanceId=vm["id"], Device="/dev/sdg")
            live = []
            for _ in range(args.runs):
                t = time.perf_counter()
                snaps.append(ec2.create_snapshot(VolumeId=big)["SnapshotId"])
                live.append(time.perf_counter() - t)
            rows.append(row("snapshot of a 1 GiB volume attached to a running VM", statistics.median(live),
                            statistics.median(raw_snap), "s",
                            "a libvirt push backup while the guest runs (TCG); raw: qemu-img convert of a still file"))
            ec2.detach_volume(VolumeId=big)
            wait_state(ec2, big, "available")
        for v in [big, *made]:
            ec2.delete_volume(VolumeId=v)
        for s in snaps:
            ec2.delete_snapshot(SnapshotId=s)
        if vm:
            api.ok("DELETE", f"/instances/{vm['id']}")
        api.ok("DELETE", f"/instances/{ct['id']}")
        emit("volumes", rows, args.json)
    finally:
        srv.stop()
        remove_leftovers(srv, docker.from_env())
        remove_volume_pool(srv)
        subprocess.run(["rm", "-rf", str(scratch)])


if __name__ == "__main__":
    main()
