#!/usr/bin/env python3
"""S3 through `pocketcloud serve` vs straight to its engine, same run, same boto3 settings.

    .venv/bin/python bench/s3_gateway.py [--small 200] [--reps 5] [--big-mib 1024] [--json PATH]

Starts a real `pocketcloud serve` (gunicorn, the one port, as a user runs it) in a scratch
home; it starts its S3 engine as usual. Requests are what boto3 sends over plain HTTP:
SigV4 with the payload's SHA-256 signed (and a CRC32 checksum header), through pocketcloud
with a user's key and directly to the engine with its root key. Both ways are interleaved
so that drift of the machine hits both alike.

* 4 KiB PUT and GET, op/s from the median of `--small` single-request latencies each way;
* 64 MiB PUT and GET, MB/s, median of `--reps`;
* `--big-mib` streamed PUT then GET (signed SHA-256, the client holding 1 MiB at a time),
  MB/s both ways, and the server's RSS (gunicorn master + worker, the engine excluded)
  sampled while it passes through pocketcloud, against its idle RSS.

With --json PATH it also writes {"bench": "s3_gateway", "rows": [{metric, pocketcloud,
raw, ratio, unit, note}]}.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from botocore.auth import S3SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from tests.integration.cloud import Server  # noqa: E402
from tests.integration.signed import sign  # noqa: E402

MiB = 1024 * 1024


# -- the server's memory ------------------------------------------------------------------------------
def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_pids(root: int) -> list[int]:
    """The gunicorn master and its worker; the engine (a child too) is not the server."""
    out = [root]
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (p / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid in out and b"rclone" not in cmd and b"minio" not in cmd and b"radosgw" not in cmd:
            out.append(int(p.name))
    return out


class Sampler(threading.Thread):
    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids, self.peak, self._halt = pids, 0, threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.peak = max(self.peak, sum(rss_kib(p) for p in self.pids))
            except OSError:
                pass
            time.sleep(0.01)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


# -- the two ways ---------------------------------------------------------------------------------------
class Way:
    """One endpoint with one key: pocketcloud with a user's, or the engine with its root key."""

    def __init__(self, name: str, endpoint: str, key_id: str, secret: str, bucket: str):
        import boto3
        from botocore.config import Config as BotoConfig

        self.name, self.endpoint, self.key_id, self.secret, self.bucket = name, endpoint, key_id, secret, bucket
        self.s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key_id, aws_secret_access_key=secret,
                               region_name="us-east-1",
                               config=BotoConfig(retries={"max_attempts": 0}, max_pool_connections=4))

    def put(self, key: str, data: bytes) -> float:
        t = time.perf_counter()
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        return time.perf_counter() - t

    def get(self, key: str, size: int) -> float:
        t = time.perf_counter()
        n = sum(len(c) for c in self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].iter_chunks(MiB))
        elapsed = time.perf_counter() - t
        assert n == size, (self.name, key, n, size)
        return elapsed

    def stream(self, size: int) -> tuple[float, float]:
        """PUT then GET `size` bytes made on the fly; botocore signs their SHA-256 (reading
        them once, as it does a file's) and they are sent 1 MiB at a time. Seconds for each."""
        body = Generated(size)
        url = f"{self.endpoint}/{self.bucket}/streamed.bin"
        req = AWSRequest(method="PUT", url=url, data=body, headers={"Content-Length": str(size)})
        S3SigV4Auth(Credentials(self.key_id, self.secret), "s3", "us-east-1").add_auth(req)
        digest = req.headers["X-Amz-Content-SHA256"]
        u = urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=900)
        try:
            t = time.perf_counter()
            conn.putrequest("PUT", u.path, skip_accept_encoding=True)
            for k, v in req.headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            while piece := body.read(MiB):
                conn.send(piece)
            resp = conn.getresponse()
            assert resp.status == 200, (self.name, resp.status, resp.read()[:300])
            resp.read()
            put = time.perf_counter() - t
            t = time.perf_counter()
            conn.putrequest("GET", u.path, skip_host=True, skip_accept_encoding=True)
            for k, v in sign("GET", url, self).items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            back = hashlib.sha256()
            while chunk := resp.read(MiB):
                back.update(chunk)
            get = time.perf_counter() - t
        finally:
            conn.close()
        assert back.hexdigest() == digest, f"{self.name}: the object came back different"
        return put, get


class Generated(io.RawIOBase):
    """`size` bytes of made-up content, readable and seekable like a file, never all in memory."""

    def __init__(self, size: int):
        self.size, self.pos = size, 0
        self.block = hashlib.sha256(b"pocketcloud").digest() * (MiB // 32)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else (self.pos + pos if whence == 1 else self.size + pos)
        return self.pos

    def readinto(self, buf) -> int:
        n = min(len(buf), self.size - self.pos, MiB - self.pos % MiB)
        if n <= 0:
            return 0
        mark = (self.pos // MiB).to_bytes(8, "big") + self.block[8:]  # every MiB differs
        start = self.pos % MiB
        buf[:n] = mark[start:start + n]
        self.pos += n
        return n


# -- measurements ------------------------------------------------------------------------------------------
def small_ops(ways: list[Way], n: int) -> dict[str, dict[str, float]]:
    """op/s from the median latency of n 4 KiB PUTs and then GETs, the ways taking turns."""
    data = os.urandom(4096)
    lat: dict[str, dict[str, list[float]]] = {w.name: {"put": [], "get": []} for w in ways}
    for w in ways:  # warm-up: connections, signing keys
        w.put("small/warm", data), w.get("small/warm", len(data))
    for i in range(n):
        for w in ways:
            lat[w.name]["put"].append(w.put(f"small/{i}", data))
    for i in range(n):
        for w in ways:
            lat[w.name]["get"].append(w.get(f"small/{i}", len(data)))
    return {name: {op: 1 / statistics.median(v) for op, v in d.items()} for name, d in lat.items()}


def throughput(ways: list[Way], size: int, reps: int) -> dict[str, dict[str, float]]:
    data = os.urandom(size)
    runs: dict[str, dict[str, list[float]]] = {w.name: {"put": [], "get": []} for w in ways}
    for i in range(reps):
        for w in ways:
            runs[w.name]["put"].append(size / w.put(f"big-{i}", data) / 1e6)
            runs[w.name]["get"].append(size / w.get(f"big-{i}", size) / 1e6)
    return {name: {op: statistics.median(v) for op, v in d.items()} for name, d in runs.items()}


def row(metric: str, pc: float | None, raw: float | None, unit: str, note: str) -> dict:
    ratio = round(pc / raw, 3) if pc is not None and raw else None
    return {"metric": metric, "pocketcloud": None if pc is None else round(pc, 1),
            "raw": None if raw is None else round(raw, 1), "ratio": ratio, "unit": unit, "note": note}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=200, help="4 KiB PUTs and GETs each way (>= 10)")
    ap.add_argument("--reps", type=int, default=5, help="64 MiB PUT+GET repetitions each way")
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()
    if args.small < 10:
        ap.error("--small must be at least 10 (medians of at least 10)")
    with tempfile.TemporaryDirectory(prefix="pc-bench-s3-") as tmp:
        srv = Server(Path(tmp) / "home", Path(tmp))
        srv.start()
        try:
            admin = srv.admin
            user = admin.ok("POST", "/accounts", 201, json={"name": "bench"})
            engine = admin.ok("GET", "/info")["storage"]
            root = json.loads((srv.home / "storage" / "root-credentials.json").read_text())
            ways = [Way("pocketcloud", srv.url, user["access_key_id"], user["secret_access_key"], "bench-pc"),
                    Way("raw", engine["endpoint"], root["access_key"], root["secret_key"], "bench-raw")]
            for w in ways:
                w.s3.create_bucket(Bucket=w.bucket)
            print(f"engine: {engine['name']} at {engine['endpoint']}")
            small = small_ops(ways, args.small)
            big = throughput(ways, args.size_mib * MiB, args.reps)
            pids = server_pids(srv.proc.pid)
            time.sleep(0.5)
            idle = sum(rss_kib(p) for p in pids)
            sampler = Sampler(pids)
            sampler.start()
            pc_put, pc_get = ways[0].stream(args.big_mib * MiB)
            peak = sampler.stop()
            raw_put, raw_get = ways[1].stream(args.big_mib * MiB)
        finally:
            srv.stop()
    mb = args.big_mib * MiB / 1e6
    pc, raw = small["pocketcloud"], small["raw"]
    boto = "boto3 over HTTP, payload SHA-256 signed"
    rows = [
        row("4 KiB PUT", pc["put"], raw["put"], "op/s", f"1 / median of {args.small} latencies; {boto}"),
        row("4 KiB GET", pc["get"], raw["get"], "op/s", f"1 / median of {args.small} latencies; {boto}"),
        row(f"{args.size_mib} MiB PUT", big["pocketcloud"]["put"], big["raw"]["put"], "MB/s",
            f"median of {args.reps}; {boto}"),
        row(f"{args.size_mib} MiB GET", big["pocketcloud"]["get"], big["raw"]["get"], "MB/s",
            f"median of {args.reps}; {boto}"),
        row(f"{args.big_mib} MiB PUT streamed", mb / pc_put, mb / raw_put, "MB/s", "one run, SHA-256 signed"),
        row(f"{args.big_mib} MiB GET streamed", mb / pc_get, mb / raw_get, "MB/s", "one run"),
        row(f"server RSS growth while {args.big_mib} MiB passes", (peak - idle) / 1024, None, "MiB",
            f"gunicorn master + worker, engine excluded: idle {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB"),
    ]
    print(f"{'metric':44} {'pocketcloud':>12} {'raw':>10} {'ratio':>7}  unit")
    for r in rows:
        raw_s = "-" if r["raw"] is None else f"{r['raw']:.1f}"
        ratio_s = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['metric']:44} {r['pocketcloud']:12.1f} {raw_s:>10} {ratio_s:>7}  {r['unit']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"bench": "s3_gateway", "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
