#!/usr/bin/env python3
"""Load: many tenants at once against one server (issue 11, outside CI).

A fresh server (tiny image, the S3 stand-in), five accounts, then three waves:
  - 50 concurrent container launches, 10 from each account (REST, POST /instances);
  - 20 concurrent execs (`sleep 1; echo ok`) over those containers, 4 per account
    (the server runs at most 16 at once: the rest answer the documented RequestLimitExceeded);
  - 200 concurrent S3 PUT + GET of 1 KiB objects (boto3, SigV4), 40 per account.
Verdict: no error other than a documented quota/limit answer, no request over 30 s, and the
server's resident memory (its Python processes; the S3 engine apart) back near where it began.
The raw engine in the same run: 50 concurrent `docker run -d` of the same image, 20 concurrent
`docker exec`, 200 concurrent PUT + GET straight to the S3 engine with its root credentials.

    .venv/bin/python bench/load.py [--launches 50] [--accounts 5] [--execs 20] [--objects 200] [--json PATH]
Exit status 1 when the verdict fails.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import boto3  # noqa: E402
import botocore.config  # noqa: E402
import botocore.exceptions  # noqa: E402
import docker  # noqa: E402
import requests  # noqa: E402

from report import emit, row  # noqa: E402
from tests.integration.cloud import Server  # noqa: E402

LIMIT = 30.0  # seconds: no request may take longer
# Answers that are a documented refusal, not a failure: quotas and concurrency limits.
DOCUMENTED = {"InstanceLimitExceeded", "RequestLimitExceeded", "SlowDown", "QuotaExceeded"}
BODY = os.urandom(1024)


class Calls:
    """Every request's latency and outcome ('ok', a documented code, or an error)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[str, float, str]] = []

    def timed(self, wave: str, fn) -> object:
        started = time.monotonic()
        try:
            result, outcome = fn(), "ok"
        except Refused as e:
            result, outcome = None, e.code
        except Exception as e:  # noqa: BLE001 - every failure is counted, none ends the run
            result, outcome = None, f"error: {type(e).__name__}: {str(e)[:160]}"
        with self.lock:
            self.rows.append((wave, time.monotonic() - started, outcome))
        return result

    def of(self, wave: str) -> list[tuple[float, str]]:
        return [(t, o) for w, t, o in self.rows if w == wave]


class Refused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def rest(api, method: str, path: str, **kw) -> dict:
    status, body = api(method, path, **kw)
    if status < 300:
        return body
    code = (body.get("error") or {}).get("code", "") if isinstance(body, dict) else ""
    if code in DOCUMENTED:
        raise Refused(code)
    raise RuntimeError(f"HTTP {status}: {body}")


class RssSampler(threading.Thread):
    """Resident memory of the server's Python processes (the S3 engine is measured apart)."""

    def __init__(self, srv: Server, engine_pid: int | None):
        super().__init__(daemon=True)
        self.srv, self.engine_pid, self.samples, self.stop = srv, engine_pid, [], threading.Event()

    @staticmethod
    def rss(pid: int) -> int:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return 0
        return next((int(ln.split()[1]) * 1024 for ln in status.splitlines() if ln.startswith("VmRSS:")), 0)

    def measure(self) -> tuple[int, int]:
        """(the server's processes: its session, the engine apart; the S3 engine)"""
        server = 0
        for d in Path("/proc").iterdir():
            try:
                if d.name.isdigit() and int(d.name) != self.engine_pid and os.getsid(int(d.name)) == self.srv.proc.pid:
                    server += self.rss(int(d.name))
            except OSError:
                continue
        return server, self.rss(self.engine_pid) if self.engine_pid else 0

    def run(self) -> None:
        while not self.stop.wait(0.25):
            self.samples.append(self.measure())


def launches(srv: Server, users: list, n: int, calls: Calls) -> list[tuple[object, str]]:
    def one(i: int):
        api = users[i % len(users)]
        body = calls.timed("launch", lambda: rest(api, "POST", "/instances", json={
            "kind": "container", "image": "tiny", "type": "t2.nano", "name": f"load-{i}"}))
        return (api, body["id"]) if body else None

    with ThreadPoolExecutor(n) as pool:
        return [r for r in pool.map(one, range(n)) if r]


def execs(made: list, n: int, calls: Calls) -> None:
    by_user: dict = {}
    for api, iid in made:
        by_user.setdefault(id(api), []).append((api, iid))
    picks = []
    while len(picks) < n and any(by_user.values()):
        for lst in by_user.values():
            if lst and len(picks) < n:
                picks.append(lst.pop())

    def one(pick):
        api, iid = pick
        res = calls.timed("exec", lambda: rest(api, "POST", f"/instances/{iid}/exec",
                                               json={"command": "sleep 1; echo ok"}))
        if res is not None and res.get("stdout", "").strip() != "ok":
            with calls.lock:
                calls.rows.append(("exec", 0.0, f"error: wrong output {res!r:.100}"))

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, picks))


def s3_client(url: str, key: str, secret: str):
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret,
                        config=botocore.config.Config(max_pool_connections=256, retries={"max_attempts": 1},
                                                      connect_timeout=10, read_timeout=60))


def s3_wave(clients: list, buckets: list[str], n: int, calls: Calls, wave: str) -> None:
    def one(i: int):
        s3, bucket = clients[i % len(clients)], buckets[i % len(buckets)]

        def put_get():
            try:
                s3.put_object(Bucket=bucket, Key=f"o{i}", Body=BODY)
                if s3.get_object(Bucket=bucket, Key=f"o{i}")["Body"].read() != BODY:
                    raise RuntimeError("object read back differs")
            except botocore.exceptions.ClientError as e:
                code = e.response["Error"]["Code"]
                if code in DOCUMENTED:
                    raise Refused(code) from None
                raise

        calls.timed(wave, put_get)

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, range(n)))


def raw_docker(image: str, n: int, n_exec: int, calls: Calls) -> list:
    dc = docker.from_env(timeout=300)

    def run(i: int):
        return calls.timed("raw-launch", lambda: dc.containers.run(
            image, detach=True, name=f"pc-bench-load-{os.getpid()}-{i}", mem_limit="512m",
            labels={"pocketcloud.bench": "load"}))

    with ThreadPoolExecutor(n) as pool:
        made = [c for c in pool.map(run, range(n)) if c is not None]

    def ex(c):
        calls.timed("raw-exec", lambda: c.exec_run(["sh", "-c", "sleep 1; echo ok"]))

    with ThreadPoolExecutor(n_exec) as pool:
        list(pool.map(ex, made[:n_exec]))
    return made


def wall(calls: Calls, wave: str, started: float, ended: float) -> float:
    return ended - started if calls.of(wave) else 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--launches", type=int, default=50)
    ap.add_argument("--accounts", type=int, default=5)
    ap.add_argument("--execs", type=int, default=20)
    ap.add_argument("--objects", type=int, default=200)
    ap.add_argument("--json")
    args = ap.parse_args()
    calls = Calls()
    walls: dict[str, float] = {}
    raw_made: list = []
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "home", Path(tmp))
        srv.cli("images", "build", "tiny")
        srv.start()
        sampler = RssSampler(srv, srv.admin.ok("GET", "/info")["storage"].get("pid"))
        made: list = []
        try:
            users = [srv.new_user(f"load{i}-{srv.port}", max_instances=args.launches // args.accounts + 1)
                     for i in range(args.accounts)]
            baseline = sampler.measure()
            sampler.start()

            t = time.monotonic()
            made = launches(srv, users, args.launches, calls)
            walls["launch"] = time.monotonic() - t
            t = time.monotonic()
            execs(made, args.execs, calls)
            walls["exec"] = time.monotonic() - t

            clients = [s3_client(srv.url, u.key_id, u.secret) for u in users]
            buckets = [f"load-{i}-{srv.port}" for i in range(len(users))]
            for s3, b in zip(clients, buckets):
                s3.create_bucket(Bucket=b)
            t = time.monotonic()
            s3_wave(clients, buckets, args.objects, calls, "s3")
            walls["s3"] = time.monotonic() - t

            storage = srv.admin.ok("GET", "/info")["storage"]
            root = json.loads((Path(tmp) / "home" / "storage" / "root-credentials.json").read_text())
            raw_s3 = s3_client(storage["endpoint"], root["access_key"], root["secret_key"])
            raw_bucket = f"raw-load-{srv.port}"
            raw_s3.create_bucket(Bucket=raw_bucket)
            t = time.monotonic()
            s3_wave([raw_s3], [raw_bucket], args.objects, calls, "raw-s3")
            walls["raw-s3"] = time.monotonic() - t

            tiny = next(i for i in srv.admin.ok("GET", "/images")["images"] if i["name"] == "tiny")
            image = tiny["kinds"]["container"]["ref"]
            t = time.monotonic()
            raw_made = raw_docker(image, args.launches, args.execs, calls)
            walls["raw-launch+exec"] = time.monotonic() - t
        finally:
            for c in raw_made:
                try:
                    c.remove(force=True)
                except Exception:  # noqa: BLE001
                    pass
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda m: m[0]("DELETE", f"/instances/{m[1]}"), made))
            time.sleep(1)
            sampler.stop.set()
            after = sampler.measure()
            srv.stop()

    def stats(wave: str) -> tuple[float, float, int, int, list[str]]:
        got = calls.of(wave)
        times = [t for t, _ in got]
        documented = sum(1 for _, o in got if o in DOCUMENTED)
        errors = [o for _, o in got if o != "ok" and o not in DOCUMENTED]
        return (statistics.median(times) if times else 0.0, max(times) if times else 0.0, documented,
                len(errors), errors)

    rows, problems = [], []
    for wave, raw_wave, label, n in (("launch", "raw-launch", "container launches", args.launches),
                                     ("exec", "raw-exec", "execs (sleep 1)", args.execs),
                                     ("s3", "raw-s3", "S3 PUT+GET of 1 KiB", args.objects)):
        med, mx, documented, n_err, errors = stats(wave)
        rmed, rmx, *_ = stats(raw_wave)
        rows.append(row(f"{n} concurrent {label}: median latency", med, rmed or None, "s"))
        rows.append(row(f"{n} concurrent {label}: slowest request", mx, rmx or None, "s",
                        f"limit {LIMIT:.0f} s"))
        rows.append(row(f"{n} concurrent {label}: documented refusals", documented, None, "count",
                        "quota/limit answers (RequestLimitExceeded, InstanceLimitExceeded, SlowDown)"))
        rows.append(row(f"{n} concurrent {label}: errors", n_err, None, "count",
                        "; ".join(sorted(set(errors)))[:300]))
        if n_err:
            problems.append(f"{wave}: {n_err} errors: {sorted(set(errors))[:5]}")
        if mx > LIMIT:
            problems.append(f"{wave}: a request took {mx:.1f} s")
    rows.append(row(f"{args.launches} launches: wall time", walls["launch"], None, "s"))
    rows.append(row(f"{args.objects} S3 PUT+GET: wall time", walls["s3"], walls.get("raw-s3"), "s",
                    "raw: the same straight to the S3 engine"))
    peak = max((s for s, _ in sampler.samples), default=baseline[0])
    mib = 1024 * 1024
    rows.append(row("server RSS before the load", baseline[0] / mib, None, "MiB", "the server's Python processes"))
    rows.append(row("server RSS peak under load", peak / mib, None, "MiB"))
    rows.append(row("server RSS after the load", after[0] / mib, None, "MiB", "instances terminated, 1 s later"))
    rows.append(row("S3 engine RSS peak", max((e for _, e in sampler.samples), default=0) / mib, None, "MiB"))
    emit("load", rows, args.json)
    if problems:
        print("\nVERDICT: FAIL\n  " + "\n  ".join(problems))
        return 1
    print(f"\nVERDICT: ok (no errors besides documented refusals; slowest request under {LIMIT:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
