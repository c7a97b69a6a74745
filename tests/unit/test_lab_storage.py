"""The storage lab's pieces without engines: what it runs in the instance, how it reads the
answers, its port forward, the labs' shared report tail, and bad options refused up front."""
from __future__ import annotations

import json
import socket
import threading

from click.testing import CliRunner

from api.cli import lab_storage as lab
from api.cli.labs import save_lab
from api.cli.relay import Relay
from api.cli.root import main


def test_timings_read_start_and_end_microseconds():
    out = "seq_write 1000000 3500000\nsha=abc\nnoise here\nrand_read 10 20\n"
    assert lab._timings(out) == {"seq_write": 2.5, "rand_read": 0.00001}
    assert lab._values(out) == {"sha": "abc"}


def test_figures_are_rates_and_per_operation_latencies():
    f = lab.figures({"seq_write": 2.0, "seq_read": 0.5, "rand_write": 0.1, "fsync": 1.0}, size_mib=64, ops=100)
    assert (f["seq_write_mib_s"], f["seq_read_mib_s"], f["write_4k_ms"], f["fsync_ms"]) == (32.0, 128.0, 1.0, 10.0)
    assert f["read_4k_ms"] is None and f["tool_start_ms"] is None  # not measured: shown as "-"
    rows = lab.table(f, {})
    assert rows[0] == ["", "volume", "bucket", "how"] and len(rows) == 1 + len(lab.METRICS)
    assert rows[1][:3] == ["sequential write (MiB/s)", "32", "-"]


def test_a_presigned_url_goes_to_printf_as_an_argument_not_a_format():
    url = "http://172.17.0.1:4000/b/k%20ey?X-Amz-Credential=AK%2F2026&X-Amz-Signature=ab"
    script = lab._http("PUT", url, "/tmp/f")
    fmt = script.split("printf '", 1)[1].split("'", 1)[0]
    assert "%2F" not in fmt and "%20" not in fmt and fmt.count("%s") == 3
    assert "'/b/k%20ey?X-Amz-Credential=AK%2F2026&X-Amz-Signature=ab' '172.17.0.1:4000'" in script
    assert "| nc 172.17.0.1 4000 >" in script
    ranged = lab._http("GET", url, extra="Range: bytes=%s" + lab.CRLF, extra_args=lab.RANGE)
    assert "Content-Length" not in ranged and ranged.count("%s") == 3 and lab.RANGE in ranged


def test_the_relay_forwards_both_ways_until_closed():
    upstream = socket.create_server(("127.0.0.1", 0))

    def answer():
        conn, _ = upstream.accept()
        data = b""
        while not data.endswith(b"\r\n\r\n"):
            data += conn.recv(100)
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + data.upper())
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    relay = Relay("127.0.0.1", upstream.getsockname()[:2])
    try:
        with socket.create_connection(relay.address, timeout=5) as s:
            s.sendall(b"get / http/1.0\r\n\r\n")
            got = b""
            while chunk := s.recv(100):
                got += chunk
        assert got == b"HTTP/1.0 200 OK\r\n\r\nGET / HTTP/1.0\r\n\r\n"
    finally:
        relay.close()
        upstream.close()
    try:
        socket.create_connection(relay.address, timeout=1).close()
        refused = False
    except OSError:
        refused = True
    assert refused, "a closed relay listens no more"


def test_save_lab_writes_chart_report_and_data_side_by_side(tmp_path):
    files = save_lab(tmp_path / "out", {"a": 1}, json_name="x.json", chart_name="x.png", report_name="r.md",
                     chart=lambda p: p.write_bytes(b"png"), report=lambda name: f"![chart]({name})")
    assert (tmp_path / "out" / "r.md").read_text() == "![chart](x.png)"
    assert json.loads((tmp_path / "out" / "x.json").read_text()) == {"a": 1}
    assert files == {"json": str(tmp_path / "out" / "x.json"), "chart": str(tmp_path / "out" / "x.png"),
                     "report": str(tmp_path / "out" / "r.md")}


def test_bad_options_are_refused_before_anything_is_made(tmp_path):
    env = {"POCKETCLOUD_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "s",
           "POCKETCLOUD_HOME": str(tmp_path)}
    for args in (["--size", "0"], ["--ops", "1001"], ["--files", "0"], ["--endpoint", "172.17.0.1:80"],
                 ["--kind", "pod"]):
        res = CliRunner().invoke(main, ["lab", "storage", *args], env=env)
        assert res.exit_code == 2, (args, res.output)
        assert "cannot reach" not in res.output


class Recorder:
    def __init__(self):
        self.commands: list[str] = []

    def call(self, method, path, json):
        self.commands.append(json["command"])
        return {"exit_code": 0, "stdout": "done\n", "stderr": ""}


def test_a_long_script_goes_in_as_base64_pieces_each_short_enough_for_dropbear():
    import base64

    script = "echo " + "'x%2F&y' " * 3000
    rec = Recorder()
    assert lab._exec(rec, "i-1", script) == "done\n"
    assert all(len(c) <= lab.MAX_COMMAND + 40 for c in rec.commands)
    pieces = [c.split(" ")[2] for c in rec.commands if c.startswith("printf %s ")]
    assert base64.b64decode("".join(pieces)).decode() == script
    assert rec.commands[-1].endswith(f"sh {lab.SCRIPT}")
    short = Recorder()
    lab._exec(short, "i-1", "echo hi")
    assert short.commands == ["echo hi"]
