"""The teaching pair through the CLI: `compare` and `lab isolation` on a VM and a container
made from the same rootfs."""
from __future__ import annotations

import json
import platform

import pytest

from .test_cli import Cli

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(server, user, tmp_path):
    return Cli(server, user, tmp_path / "cli-home")


def test_compare_a_vm_with_a_container(cli):
    vm = cli.json("instances", "run", "tiny", "--kind", "vm", "--type", "t2.nano", "--wait")["id"]
    ct = cli.json("instances", "run", "tiny", "--kind", "container", "--type", "t2.nano", "--wait")["id"]
    try:
        left, right = cli.json("compare", vm, ct)["instances"]
        assert left["kernel"] != platform.release() and right["kernel"] == platform.release()
        assert left["os"] == right["os"] == "pocketcloud tiny (BusyBox 1.35.0)"
        assert "QEMU" in left["isolation"] and "namespaces" in right["isolation"]
        assert left["host_memory_bytes"] > right["host_memory_bytes"]
        with open(f"/proc/{left['host_pid']}/comm") as f:
            assert f.read().startswith("qemu")
    finally:
        cli("instances", "rm", vm, rc=None)
        cli("instances", "rm", ct, rc=None)


def test_lab_isolation_writes_a_report_and_cleans_up(cli, tmp_path):
    out = tmp_path / "lab"
    res = cli.json("lab", "isolation", "--out", str(out), timeout=600)
    vm, ct = res["results"]["vm"], res["results"]["container"]
    assert vm["kernel"] != ct["kernel"] == platform.release()
    assert vm["os"] == ct["os"]
    assert vm["visible_processes"] and ct["visible_processes"]
    assert int(vm["visible_processes"]) > int(ct["visible_processes"]), "a VM sees its own kernel threads"
    png = (out / "isolation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    report = (out / "isolation.md").read_text()
    assert "| kernel (uname -r inside) |" in report
    assert json.loads((out / "isolation.json").read_text())["vm"]["id"] == vm["id"]
    left = [i for i in cli.json("instances", "ls")["instances"] if i["state"] != "terminated"]
    assert left == [], "the lab leaves nothing running"
