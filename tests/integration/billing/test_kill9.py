"""kill -9 the server while it meters, three times at random moments: instance time is billed
exactly once (the engine kept the instance running while the server was down), and S3 request
counts lose at most what arrived in the last metering interval before each kill."""
from __future__ import annotations

import os
import random
import secrets
import signal
import threading
import time

import pytest
from botocore.config import Config as BotoConfig

from tests.conftest import start_server, stop_and_check_leaks

from .conftest import BILLING_START, INTERVAL, SCALE, client

pytestmark = pytest.mark.integration
WINDOW = INTERVAL + 1.0  # one metering interval, plus the pass that flushes it


def test_kill9_during_metering_neither_double_counts_nor_loses_more_than_the_window(tmp_path_factory,
                                                                                      docker_client):
    srv = start_server(tmp_path_factory.mktemp("pckill"), POCKETCLOUD_TIME_SCALE=str(SCALE),
                       POCKETCLOUD_METER_INTERVAL=str(INTERVAL), POCKETCLOUD_BILLING_START=BILLING_START)
    inst = None
    try:
        api = srv.new_user(f"k{secrets.token_hex(3)}")
        day0 = api.ok("GET", "/billing/settings")["clock"]["now"][:10]
        bucket = f"kill-{secrets.token_hex(4)}"
        s3 = client(srv, api, "s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="k", Body=b"x" * 100)
        inst = api.ok("POST", "/instances", 201, json={"image": "tiny", "type": "m5.large"})["id"]
        t_run = time.time()
        attempts, done, stop = [0], [], threading.Event()

        def hammer():
            import boto3

            c = boto3.client("s3", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=api.key_id,
                             aws_secret_access_key=api.secret,
                             config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5))
            while not stop.is_set():
                attempts[0] += 1
                try:
                    c.get_object(Bucket=bucket, Key="k")["Body"].read()
                    done.append(time.time())
                except Exception:  # noqa: BLE001 - the server is down for a moment
                    time.sleep(0.05)

        t = threading.Thread(target=hammer, daemon=True)
        t.start()
        kills = []
        rng = random.Random()
        for _ in range(3):
            time.sleep(rng.uniform(1.0, 2.5))
            kills.append(time.time())
            os.killpg(srv.proc.pid, signal.SIGKILL)
            srv.proc.wait()
            srv.start()
        time.sleep(2)
        stop.set()
        t.join(30)
        t_stop = time.time()
        api.ok("POST", f"/instances/{inst}/stop")
        bill = api.ok("GET", "/billing", params={"start": day0, "granularity": "MONTHLY",
                                                  "group_by": "RESOURCE_ID,USAGE_TYPE"})
        lines = {tuple(x["keys"]): x["quantity"] for x in bill["lines"]}
        expected_hours = (t_stop - t_run) * SCALE / 3600
        assert lines[(inst, "BoxUsage:m5.large")] == pytest.approx(expected_hours, abs=0.1), \
            "running time billed once, downtime included (the container kept running)"
        counted = lines.get((bucket, "Requests-Tier2"), 0)
        in_window = sum(1 for k in kills for d in done if k - WINDOW <= d <= k)
        print(f"kill -9 x{len(kills)}: {len(done)} answered, {attempts[0]} attempted, {counted:g} billed, "
              f"{in_window} answered within {WINDOW:g}s before a kill; hours {lines[(inst, 'BoxUsage:m5.large')]:.4f} "
              f"billed vs {expected_hours:.4f} real x scale")
        assert counted <= attempts[0], "never more than were made"
        assert counted <= len(done) + len(kills), "at most the one request in flight at each kill beyond the answered"
        assert len(done) - counted <= in_window, (len(done), counted, in_window)
    finally:
        if inst:
            api("DELETE", f"/instances/{inst}")
        stop_and_check_leaks(srv, docker_client)
