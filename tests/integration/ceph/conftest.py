"""One real `pocketcloud serve` on Ceph (POCKETCLOUD_S3_ENGINE=ceph) for the Ceph tests: one
bootstrap per run, torn down after them, with a check that none of its daemons outlive it.
The cluster is made for more than one machine: it binds to the address of a bridge the tests
make (hostnet.py), where a namespace plays the second machine (test_ceph_hosts.py); so the
multi-host test extends the shared cluster instead of bootstrapping its own.

The packages come from scripts/engines.sh (scripts/ceph-packages.sh); a missing one fails the
run, as any missing engine does.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests

from emulator.storage.ceph import CephCluster, missing_packages
from emulator.storage.ceph.daemons import _cmdline

from tests.integration.cloud import REPO, Server

from .hostnet import HostNet

ARTIFACTS = REPO / "artifacts"
BOOT_TIMEOUT = 300


def ceph_processes(home: Path) -> dict[int, list[str]]:
    """pid -> argv of every process whose command line names this home's ceph.conf."""
    conf = str(home / "storage" / "ceph" / "ceph.conf")
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            argv = _cmdline(int(entry.name))
            if argv and conf in argv:
                found[int(entry.name)] = argv
    return found


def storage_info(srv: Server) -> dict:
    return srv.admin.ok("GET", "/info")["storage"]


def wait_storage(srv: Server, cond, what: str, timeout: float = BOOT_TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    info: dict = {}
    while time.monotonic() < deadline:
        try:
            info = storage_info(srv)
            if cond(info):
                return info
        except (requests.RequestException, AssertionError):
            pass
        time.sleep(1)
    raise AssertionError(f"{what} not within {timeout} s; storage: {json.dumps(info)[:1500]}\n"
                         f"{srv.log_path.read_text()[-3000:]}")


def console_session(srv: Server) -> requests.Session:
    """A console session signed in with the admin's keys."""
    admin = srv.admin
    s = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', s.get(srv.console_url + "/ui/login").text).group(1)
    r = s.post(srv.console_url + "/ui/login", data={"csrf": csrf, "access_key_id": admin.key_id,
                                            "secret_access_key": admin.secret})
    assert r.status_code == 200 and "/ui/login" not in r.url
    return s


def wait_serving(srv: Server, timeout: float = BOOT_TIMEOUT) -> dict:
    return wait_storage(srv, lambda i: i.get("engine") == "ceph" and i.get("status") == "running",
                        "Ceph serving S3", timeout)


@pytest.fixture(scope="package")
def ceph_net(tmp_path_factory):
    net = HostNet(tmp_path_factory.mktemp("pc-ceph-net"))
    try:
        yield net
    finally:
        net.close()
        leaks = net.leaks()
        assert not leaks, f"the Ceph tests left network pieces behind: {leaks}"


@pytest.fixture(scope="package")
def ceph_server(tmp_path_factory, ceph_net):
    missing = missing_packages()
    if missing:
        pytest.fail(f"Ceph packages missing: {' '.join(missing)}; run `make test` (scripts/engines.sh installs them)")
    ARTIFACTS.mkdir(exist_ok=True)
    home = tmp_path_factory.mktemp("pc-ceph")
    srv = Server(home, ARTIFACTS)
    srv.env["POCKETCLOUD_S3_ENGINE"] = "ceph"
    srv.env["POCKETCLOUD_CEPH_ADDRESS"] = ceph_net.host_ip
    srv.start()
    try:
        wait_serving(srv)
        yield srv
    finally:
        srv.stop()
        left = ceph_processes(home)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert not left, f"Ceph daemons of the test home outlived its server: {left}"


@pytest.fixture
def cluster(ceph_server) -> CephCluster:
    """The server's cluster seen from the test process (placement, hold/kill), not managed here."""
    return CephCluster(Path(ceph_server.home) / "storage" / "ceph").attach()
