#!/usr/bin/env python3
"""S3 gateway overhead, same run, same engine: through pocketcloud vs directly to the engine.

    python bench/s3_gateway.py [--big-mib 1024] [--json artifacts/bench-s3.json]

Starts a pocketcloud S3 gateway in its own process (gunicorn, one gthread worker, as
`pocketcloud serve` runs), which starts its engine as usual (POCKETCLOUD_S3_ENDPOINT if
set, else ... the embedded stand-in). Then, with the same boto3 client settings both ways:

* 64 MiB PUT and GET throughput (MB/s) through the gateway and directly (ratio);
* 4 KiB PUT and GET operations per second both ways (ratio);
* the gateway process's RSS while a 1 GiB object is PUT and then GET through it (streamed
  from/to a generator on the client side), against its idle RSS.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MiB = 1024 * 1024


# -- the server side (a separate process, so its RSS is the gateway's alone) ---------------------
def serve(home: str, port: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    from api.s3 import create_s3_app
    from emulator.accounts import Accounts
    from emulator.config import Config
    from emulator.state import Store
    from emulator.storage import Storage

    class Cloud:
        pass

    cloud = Cloud()
    cloud.config = Config(home=Path(home), port=port)
    cloud.store = Store(cloud.config.db_path)
    cloud.accounts = Accounts(cloud.store, cloud.config.secret_key_path)
    cloud.storage = Storage(cloud.store, cloud.accounts, cloud.config).start()
    backend = cloud.storage.backend
    info = {"engine": backend.describe(), "endpoint": backend.endpoint, "key": backend.access_key,
            "secret": backend.secret_key, "pid": os.getpid()}
    Path(home, "bench-backend.json").write_text(json.dumps(info))
    app = create_s3_app(cloud)

    class G(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"127.0.0.1:{port}")
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 900)
            self.cfg.set("loglevel", "warning")

        def load(self):
            return app

    try:
        G().run()
    finally:
        cloud.storage.close()


# -- the client side ------------------------------------------------------------------------------
def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_pids(pid: int) -> list[int]:
    """The gunicorn master and its worker (the engine runs in another session and is excluded)."""
    out = [pid]
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and b"rclone" not in (p / "cmdline").read_bytes() and \
                        b"minio" not in (p / "cmdline").read_bytes():
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


class Sampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.peak, self._halt = pids, 0, threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                self.peak = max(self.peak, sum(rss_kib(p) for p in self.pids))
            except OSError:
                pass
            time.sleep(0.01)

    def stop(self):
        self._halt.set()
        self.join()
        return self.peak


def client(endpoint, key, secret):
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name="us-east-1", config=BotoConfig(retries={"max_attempts": 0},
                                                                   max_pool_connections=4))


def throughput(s3, bucket: str, size: int, reps: int) -> tuple[float, float]:
    data = os.urandom(size)
    puts, gets = [], []
    for i in range(reps):
        t = time.perf_counter()
        s3.put_object(Bucket=bucket, Key=f"big-{i}", Body=data)
        puts.append(size / (time.perf_counter() - t) / 1e6)
        t = time.perf_counter()
        body = s3.get_object(Bucket=bucket, Key=f"big-{i}")["Body"]
        n = 0
        for chunk in body.iter_chunks(MiB):
            n += len(chunk)
        assert n == size
        gets.append(size / (time.perf_counter() - t) / 1e6)
    return statistics.median(puts), statistics.median(gets)


def small_ops(s3, bucket: str, n: int) -> tuple[float, float]:
    data = os.urandom(4096)
    t = time.perf_counter()
    for i in range(n):
        s3.put_object(Bucket=bucket, Key=f"small/{i}", Body=data)
    put = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(n):
        s3.get_object(Bucket=bucket, Key=f"small/{i}")["Body"].read()
    get = n / (time.perf_counter() - t)
    return put, get


def stream_big(endpoint: str, key: str, secret: str, bucket: str, size: int) -> str:
    """PUT then GET `size` bytes through raw HTTP with a generator body (the client holds 1 MiB at a time)."""
    import http.client
    from urllib.parse import urlsplit

    from emulator.sigv4 import sign_headers

    u = urlsplit(endpoint)
    block = os.urandom(MiB)
    h = hashlib.sha256()
    path = f"/{bucket}/huge.bin"
    headers = sign_headers("PUT", path, [], {"host": u.netloc, "content-length": str(size)},
                           access_key=key, secret_key=secret, region="us-east-1")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=900)
    conn.putrequest("PUT", path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    for i in range(size // MiB):
        piece = block[:8] + i.to_bytes(8, "big") + block[16:]
        h.update(piece)
        conn.send(piece)
    resp = conn.getresponse()
    assert resp.status == 200, (resp.status, resp.read()[:300])
    resp.read()
    headers = sign_headers("GET", path, [], {"host": u.netloc}, access_key=key, secret_key=secret,
                           region="us-east-1")
    conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    resp = conn.getresponse()
    g = hashlib.sha256()
    while True:
        chunk = resp.read(MiB)
        if not chunk:
            break
        g.update(chunk)
    conn.close()
    assert g.hexdigest() == h.hexdigest(), "1 GiB object came back different"
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", nargs=3, metavar=("HOME", "PORT", "THREADS"), help=argparse.SUPPRESS)
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--small", type=int, default=300, help="number of 4 KiB PUTs and GETs")
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), int(args.serve[2]))
        return 0

    from emulator.accounts import Accounts
    from emulator.config import Config
    from emulator.state import Store
    from emulator.storage.backend import free_port

    home = Path(tempfile.mkdtemp(prefix="pc-bench-s3-"))
    port = free_port()
    log = open(home / "server.log", "w")
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(home), str(port), str(args.threads)],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        info_path = home / "bench-backend.json"
        deadline = time.monotonic() + 60
        while not info_path.exists() and time.monotonic() < deadline:
            if server.poll() is not None:
                raise SystemExit(f"server died: {(home / 'server.log').read_text()[-2000:]}")
            time.sleep(0.1)
        info = json.loads(info_path.read_text())
        gateway = f"http://127.0.0.1:{port}"
        import socket
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        cfg = Config(home=home)
        accounts = Accounts(Store(cfg.db_path), cfg.secret_key_path)
        _, k = accounts.create("bench")
        via = client(gateway, k.key_id, k.secret)
        direct = client(info["endpoint"], info["key"], info["secret"])
        via.create_bucket(Bucket="bench-gw")
        direct.create_bucket(Bucket="bench-direct")
        print(f"engine: {info['engine']['name']} at {info['endpoint']} ({info['engine']['reason']})")
        size = args.size_mib * MiB
        throughput(via, "bench-gw", 4 * MiB, 1)  # warm-up
        throughput(direct, "bench-direct", 4 * MiB, 1)
        res = {"engine": info["engine"]["name"], "size_mib": args.size_mib}
        # interleave to share any drift of the machine between both ways
        d_put, d_get = throughput(direct, "bench-direct", size, args.reps)
        g_put, g_get = throughput(via, "bench-gw", size, args.reps)
        d_put2, d_get2 = throughput(direct, "bench-direct", size, args.reps)
        d_put, d_get = max(d_put, d_put2), max(d_get, d_get2)
        res.update(put_direct_MBps=round(d_put, 1), put_gateway_MBps=round(g_put, 1),
                   put_ratio=round(g_put / d_put, 3), get_direct_MBps=round(d_get, 1),
                   get_gateway_MBps=round(g_get, 1), get_ratio=round(g_get / d_get, 3))
        dp, dg = small_ops(direct, "bench-direct", args.small)
        gp, gg = small_ops(via, "bench-gw", args.small)
        res.update(small_put_direct_ops=round(dp, 1), small_put_gateway_ops=round(gp, 1),
                   small_put_ratio=round(gp / dp, 3), small_get_direct_ops=round(dg, 1),
                   small_get_gateway_ops=round(gg, 1), small_get_ratio=round(gg / dg, 3))
        pids = tree_pids(server.pid)
        time.sleep(0.5)
        idle = sum(rss_kib(p) for p in pids)
        sampler = Sampler(pids)
        sampler.start()
        t = time.perf_counter()
        stream_big(gateway, k.key_id, k.secret, "bench-gw", args.big_mib * MiB)
        elapsed = time.perf_counter() - t
        peak = sampler.stop()
        res.update(big_mib=args.big_mib, big_put_get_seconds=round(elapsed, 1), server_idle_rss_mib=round(idle / 1024, 1),
                   server_peak_rss_mib=round(peak / 1024, 1), server_rss_growth_mib=round((peak - idle) / 1024, 1))
        print(f"64 MiB PUT  direct {d_put:7.1f} MB/s  gateway {g_put:7.1f} MB/s  ratio {g_put / d_put:.2f}")
        print(f"64 MiB GET  direct {d_get:7.1f} MB/s  gateway {g_get:7.1f} MB/s  ratio {g_get / d_get:.2f}")
        print(f"4 KiB PUT   direct {dp:7.1f} op/s  gateway {gp:7.1f} op/s  ratio {gp / dp:.2f}")
        print(f"4 KiB GET   direct {dg:7.1f} op/s  gateway {gg:7.1f} op/s  ratio {gg / dg:.2f}")
        print(f"{args.big_mib} MiB PUT+GET through the gateway in {elapsed:.1f}s: server RSS idle "
              f"{idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB (+{(peak - idle) / 1024:.1f} MiB)")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(res, indent=2))
        return 0
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        import shutil

        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
