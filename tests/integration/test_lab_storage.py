"""`pocketcloud lab storage` on a real container, a real volume and a real bucket, through the
CLI like a student: a small dataset (seconds), the table's structure, the capability table's
tried answers, and nothing left behind afterwards, also when the lab is interrupted."""
from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from api.cli.lab_storage import METRICS

from .cloud import PC
from .test_cli import Cli

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(server, user, tmp_path):
    return Cli(server, user, tmp_path / "cli-home")


def nothing_left(user) -> None:
    assert [i["id"] for i in user.ok("GET", "/instances")["instances"] if i["state"] != "terminated"] == []
    assert user.ok("GET", "/volumes")["volumes"] == []
    assert user.ok("GET", "/buckets")["buckets"] == []


def test_lab_storage_compares_a_volume_and_a_bucket_and_cleans_up(cli, user, tmp_path):
    out = tmp_path / "lab"
    res = cli.json("lab", "storage", "--size", "4", "--ops", "8", "--files", "20", "--out", str(out), timeout=300)

    assert res["table"][0] == ["", "volume", "bucket", "how"]
    assert [row[0] for row in res["table"][1:]] == [label for _, label, _ in METRICS]
    for key in ("seq_write_mib_s", "seq_read_mib_s", "write_4k_ms", "read_4k_ms"):
        assert res["volume_figures"][key] > 0 and res["bucket_figures"][key] > 0, key
    assert res["guest_device"] == res["mount"] == "/volumes/sdf" and " ext4 " in res["filesystem"]
    assert res["endpoint_inside"].startswith("http://") and "127.0.0.1" not in res["endpoint_inside"]

    can = {row["what"]: row for row in res["can"]}
    assert list(can) == ["rename", "append", "partial overwrite", "share between instances",
                         "list many (20 entries here)"]
    assert "'onetwo'" in can["append"]["volume"] and "GET gives 'two'" in can["append"]["bucket"]
    assert "'0123XY6789'" in can["partial overwrite"]["volume"]
    assert "(VolumeInUse)" in can["share between instances"]["volume"]
    assert can["share between instances"]["bucket"].startswith("yes")
    assert "tried: 20 files" in can["list many (20 entries here)"]["volume"]
    assert "tried: 20 keys, 1 page(s)" in can["list many (20 entries here)"]["bucket"]
    assert res["can_table"][0][1:] == ["volume (a filesystem on a block device)", "bucket (objects over HTTP)"]

    assert (out / "storage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| sequential write (MiB/s) |" in report and "## What each can and cannot do" in report
    assert json.loads((out / "storage.json").read_text())["volume"] == res["volume"]
    assert res["left_behind"] == []
    nothing_left(user)


def test_an_interrupted_lab_storage_deletes_what_it_made(cli, user, tmp_path):
    # Ctrl-C as a terminal sends it: a run started in the background (`cmd &` in a script, as CI
    # may be) inherits SIGINT ignored, and Python then never turns it into KeyboardInterrupt.
    proc = subprocess.Popen([PC, "lab", "storage", "--size", "4", "--ops", "400", "--out", str(tmp_path / "lab")],
                            env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        said = []
        for line in proc.stderr:  # interrupted while the volume is attached and the instances run
            said.append(line)
            if line.startswith("volume: sequential"):
                break
        assert user.ok("GET", "/volumes")["volumes"], said
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "clean-up: volume" in err and "clean-up: instance" in err
    nothing_left(user)


def test_an_endpoint_the_instance_cannot_reach_is_said_and_nothing_is_left(cli, user, tmp_path):
    # 127.0.0.1 inside the container is its own loopback: nothing listens on port 1 there
    res = cli("lab", "storage", "--size", "1", "--ops", "1", "--files", "1", "--endpoint", "http://127.0.0.1:1",
              "--out", str(tmp_path / "lab"), rc=2)
    assert "EndpointUnreachable" in res.stderr and "give --endpoint" in res.stderr
    nothing_left(user)
