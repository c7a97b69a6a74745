"""Kill -9 during a launch, on real engines (issue 11, crash safety).

For each step, a server started with POCKETCLOUD_FAULT=launch:after-STEP kills itself
(SIGKILL, the gunicorn master too) at that step of a launch; the server is started again
without the hook, which reconciles once before it answers. Then: nothing is left in a
transitional state without an engine object behind it, the instance is adopted (running,
reachable through its forward) or rolled back (terminated with Server.InternalError), no
container, domain, overlay, seed or DHCP reservation is left without a live instance, and
the account's quota counts exactly the instances the engines run. The step x outcome
matrix is printed and written to artifacts/crash-matrix.md.
"""
from __future__ import annotations

import os
import signal
import socket
import time

import pytest
import requests

from emulator.config import Config
from tests.conftest import ARTIFACTS, start_server, stop_and_check_leaks

from .conftest import engine_snapshot

pytestmark = pytest.mark.integration

WEB = ("#!/bin/sh\nmkdir -p /www; echo crash-safe > /www/index.html\n"
       "printf '#!/bin/sh\\nhttpd -p 80 -h /www\\n' > /etc/rc.local; chmod +x /etc/rc.local\n")
# (kind, step): the container steps and the VM steps of a launch (one VM boot only: CI time).
STEPS = [("container", "record"), ("container", "engine-create"), ("container", "start"),
         ("vm", "record"), ("vm", "define"), ("vm", "start")]
MATRIX: list[tuple[str, str, str, str]] = []


@pytest.fixture(scope="module")
def crashy(tmp_path_factory, docker_client):
    srv = start_server(tmp_path_factory.mktemp("crash") / "home")
    yield srv, Config(home=srv.home, vm_network=srv.vm_network, vm_cidr=srv.vm_cidr)
    srv.env.pop("POCKETCLOUD_FAULT", None)
    if srv.proc.poll() is not None:
        srv.start()
    write_matrix()
    stop_and_check_leaks(srv, docker_client)


def write_matrix() -> None:
    lines = ["| kind | killed after step | outcome | state reason |", "| --- | --- | --- | --- |"]
    lines += [f"| {k} | {s} | {o} | {r} |" for k, s, o, r in MATRIX]
    text = "\n".join(["# Kill -9 during a launch: step x outcome", "",
                      "tests/integration/test_crash_launch.py; one reconcile pass after the restart.", "", *lines, ""])
    print("\n" + text)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "crash-matrix.md").write_text(text)


def crash_during(srv, kind: str, step: str, payload: dict) -> str:
    """Launch on a server armed to die at STEP; return the instance id once it is dead."""
    srv.stop()
    srv.env["POCKETCLOUD_FAULT"] = f"launch:after-{step}"
    srv.start()
    user = srv.new_user(f"crash-{kind[0]}-{step[:6]}-{srv.port}", max_instances=1)
    try:
        status, body = user("POST", "/instances", json=payload)
        # A VM launch answers pending before its engine steps run in the server's worker.
        assert kind == "vm" and step != "record" and status == 201, (status, body)
    except requests.ConnectionError:
        pass  # the server died under the request, as it should
    srv.proc.wait(60)
    try:  # what the dead server's session still had (its S3 engine): started by this test
        os.killpg(srv.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    srv.env.pop("POCKETCLOUD_FAULT")
    srv.start()  # reconciles once before it answers
    ids = [i["id"] for i in srv.admin.ok("GET", "/instances", params={"all": "1"})["instances"]
           if i["owner"] == user_id(srv, user)]
    assert len(ids) <= 1, ids
    srv.crash_user = user
    return ids[0] if ids else ""


def user_id(srv, user) -> str:
    return user.ok("GET", "/accounts/me")["id"]


def answers(port: int, kind: str, timeout: float) -> bool:
    """The instance behind a forward: the container's web page, the VM's SSH banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if kind == "container":
                if requests.get(f"http://127.0.0.1:{port}/", timeout=3).text.strip() == "crash-safe":
                    return True
            else:
                with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                    s.settimeout(5)
                    if s.recv(4).startswith(b"SSH-"):
                        return True
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("kind,step", STEPS, ids=[f"{k}-after-{s}" for k, s in STEPS])
def test_kill_9_during_a_launch(crashy, docker_client, kind, step):
    srv, config = crashy
    payload = {"image": "tiny", "kind": kind, "type": "t2.nano"}
    if kind == "container":
        payload.update(ports=[{"guest": 80}], user_data=WEB)
    iid = crash_during(srv, kind, step, payload)
    user = srv.crash_user

    everything = srv.admin.ok("GET", "/instances", params={"all": "1"})["instances"]
    stuck = [(i["id"], i["state"]) for i in everything
             if i["state"] in ("stopping", "shutting-down") or (i["state"] == "pending" and not i["engine"]["id"])]
    assert not stuck, f"left in a transitional state with nothing behind it: {stuck}"
    if not iid:  # killed before the record was committed: nothing may exist at all
        outcome, reason = "nothing recorded", ""
    else:
        inst = user.ok("GET", f"/instances/{iid}")
        reason = inst["state_reason"]
        if inst["state"] == "terminated":
            assert reason.startswith("Server.InternalError: "), inst
            outcome = "rolled back"
        else:
            # Adopted: the engine runs it. A VM adopted while it boots is pending with its domain
            # (the engine's truth) and reaches running without anyone's help.
            assert inst["engine"]["id"], inst
            assert inst["state"] == "running" or (kind == "vm" and inst["state"] == "pending"), inst
            booting = inst["state"] == "pending"
            inst = user.wait_state(iid, "running", timeout=300)
            guest = 80 if kind == "container" else 22
            port = next(p["host"] for p in inst["ports"] if p["guest"] == guest)
            assert answers(port, kind, 120), f"{iid} adopted but not reachable through 127.0.0.1:{port}"
            outcome = "adopted" + (" (booting, then running)" if booting else " (running)")

    live = {i["id"]: i for i in srv.admin.ok("GET", "/instances", params={"all": "1"})["instances"]
            if i["state"] != "terminated"}
    seen = engine_snapshot(srv, config, docker_client)
    want = {
        "containers": sorted(f"pc-{i}" for i, x in live.items() if x["kind"] == "container"),
        "domains": sorted(f"pc-{i}" for i, x in live.items() if x["kind"] == "vm"),
        "instance dirs": sorted(i for i, x in live.items() if x["kind"] == "vm"),
        "dhcp reservations": sorted(i for i, x in live.items() if x["kind"] == "vm"),
    }
    assert {k: seen[k] for k in want} == want, "an engine object without a live instance, or the reverse"

    # The quota (1 instance) counts what is stored, and what is stored is what runs.
    status, body = user("POST", "/instances", json={"image": "tiny", "type": "t2.nano"})
    if outcome.startswith("adopted"):
        assert (status, body["error"]["code"]) == (403, "InstanceLimitExceeded"), body
        user.ok("DELETE", f"/instances/{iid}")
    else:
        assert status == 201 and body["state"] == "running", body
        user.ok("DELETE", f"/instances/{body['id']}")
    MATRIX.append((kind, step, outcome, reason[:90]))
