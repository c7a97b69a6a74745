#!/usr/bin/env python3
"""Ceph as the S3 engine: bootstrap time, idle RSS, gateway vs RGW direct, durability timeline.

    python bench/ceph_engine.py [--objects 200] [--json artifacts/bench-ceph.json]

In one run, on a fresh home (needs the Ceph packages: scripts/ceph-packages.sh):

* bootstrap time of a new cluster (mon, mgr, three BlueStore OSDs on files, RGW, S3 user),
  and the time to start it again after a clean stop (the reuse path of every server start);
* RSS of the six daemons after the cluster has idled for a while;
* `pocketcloud serve` on that home (the engine choice finds the cluster), then 64 MiB PUT/GET
  throughput and 4 KiB PUT/GET operations per second through the gateway and straight to RGW;
* the durability lab's logic: N objects written, one OSD killed, everything read back,
  the OSD restarted by pocketcloud's supervisor, time to all PGs active+clean.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from s3_gateway import client, rss_kib, small_ops, throughput  # noqa: E402

from emulator.storage.ceph import CephCluster, missing_packages  # noqa: E402
from emulator.storage.ceph.daemons import scan  # noqa: E402
from emulator.storage.ceph.lab import EngineBucket, durability  # noqa: E402
from emulator.storage.client import BackendClient  # noqa: E402

MiB = 1024 * 1024
PC = str(Path(sys.executable).with_name("pocketcloud"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_rss_mib(cluster: CephCluster) -> tuple[float, dict[str, float]]:
    per = {name: rss_kib(pid) / 1024 for name, pid in scan(cluster.layout, cluster._names()).items()}
    return sum(per.values()), per


def start_server(home: Path, port: int, log) -> subprocess.Popen:
    import requests

    env = {**os.environ, "POCKETCLOUD_HOME": str(home), "POCKETCLOUD_PORT": str(port)}
    env.pop("POCKETCLOUD_S3_ENDPOINT", None)
    proc = subprocess.Popen([PC, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    from emulator.accounts import read_credentials

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            creds = read_credentials(home / "credentials")
            info = requests.get(f"http://127.0.0.1:{port}/api/v1/info", auth=(creds.key_id, creds.secret),
                                timeout=10).json()["storage"]
            if info.get("status") == "running":
                return proc
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    raise SystemExit("pocketcloud serve did not bring Ceph up within 300 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objects", type=int, default=200, help="objects in the durability run")
    ap.add_argument("--reps", type=int, default=3, help="64 MiB PUT/GET repetitions")
    ap.add_argument("--small", type=int, default=300, help="4 KiB operations each way")
    ap.add_argument("--idle", type=float, default=30, help="seconds of idling before the RSS sample")
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()
    if missing_packages():
        raise SystemExit(f"Ceph packages missing: {' '.join(missing_packages())} (scripts/ceph-packages.sh)")
    work = Path(tempfile.mkdtemp(prefix="pc-bench-ceph-"))
    home = work / "home"
    rows, notes = [], {}
    cluster = CephCluster(home / "storage" / "ceph", progress=lambda line: print(f"  {line}", flush=True))
    proc = None
    try:
        t = time.monotonic()
        cluster.start()
        boot = time.monotonic() - t
        rows.append(("bootstrap: new cluster until S3 answers", boot, None, "s", "mon+mgr+3 OSDs+RGW+user"))
        cluster.stop()
        t = time.monotonic()
        cluster.start()
        rows.append(("start of an existing cluster until S3 answers", time.monotonic() - t, None, "s", "after stop"))
        time.sleep(args.idle)
        total, per = cluster_rss_mib(cluster)
        rows.append(("cluster RSS idle (6 daemons)", total, None, "MiB",
                     ", ".join(f"{n} {v:.0f}" for n, v in per.items())))
        cluster.stop()  # the server adopts nothing: it starts the cluster itself, as in real use

        port = free_port()
        log = open(work / "server.log", "ab")
        proc = start_server(home, port, log)
        ceph = CephCluster(home / "storage" / "ceph").attach()
        from emulator.accounts import read_credentials

        admin = read_credentials(home / "credentials")
        key, secret = ceph.credentials()
        gw = client(f"http://127.0.0.1:{port}", admin.key_id, admin.secret)
        direct = client(ceph.endpoint(), key, secret)
        gw.create_bucket(Bucket="bench-gw")
        direct.create_bucket(Bucket="bench-direct")
        gput, gget = throughput(gw, "bench-gw", 64 * MiB, args.reps)
        dput, dget = throughput(direct, "bench-direct", 64 * MiB, args.reps)
        rows += [("64 MiB PUT", gput, dput, "MB/s", "gateway vs RGW direct"),
                 ("64 MiB GET", gget, dget, "MB/s", "gateway vs RGW direct")]
        sgp, sgg = small_ops(gw, "bench-gw", args.small)
        sdp, sdg = small_ops(direct, "bench-direct", args.small)
        rows += [("4 KiB PUT", sgp, sdp, "ops/s", "sequential, one client"),
                 ("4 KiB GET", sgg, sdg, "ops/s", "sequential, one client")]

        engine = BackendClient(ceph.endpoint(), key, secret, timeout=60)
        scratch = EngineBucket(engine, "bench-durability").create()
        report = durability(ceph, scratch, objects=args.objects, size=64 * 1024, timeout=300,
                            progress=lambda line: print(f"  {line}", flush=True))
        scratch.remove()
        notes["durability"] = report
        rows += [("durability: OSD down until the cluster noticed", report["seconds_to_detect"], None, "s",
                  f"{report['osd']} killed with SIGKILL"),
                 ("durability: objects intact with one OSD down", report["intact"], report["objects"], "objects",
                  "read back and compared (sha256)"),
                 ("durability: OSD restart until all PGs active+clean", report["seconds_to_recover"], None, "s",
                  "pocketcloud's supervisor restarts it")]
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
        cluster.stop()
        left = scan(cluster.layout, cluster._names())
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'metric':52} {'pocketcloud':>12} {'raw':>10} {'ratio':>6}  unit   note")
    out = []
    for metric, pc, raw, unit, note in rows:
        ratio = round(pc / raw, 2) if raw else None
        print(f"{metric:52} {pc:12.2f} {'' if raw is None else f'{raw:10.2f}':>10} "
              f"{'' if ratio is None else f'{ratio:6.2f}':>6}  {unit:6} {note}")
        out.append({"metric": metric, "pocketcloud": round(pc, 3), "raw": None if raw is None else round(raw, 3),
                    "ratio": ratio, "unit": unit, "note": note})
    if "durability" in notes:
        print("\ndurability timeline:")
        for e in notes["durability"]["events"]:
            print(f"  {e['t']:7.2f} s  {e['event']}")
    if left:
        print(f"WARNING: Ceph daemons left running: {left}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"bench": "ceph_engine", "rows": out,
                                               "durability": notes.get("durability")}, indent=1))


if __name__ == "__main__":
    main()
