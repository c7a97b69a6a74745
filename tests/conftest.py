"""Shared fixtures (integration and browser tests): one real server per session, over real
engines. A missing engine fails the run (CI must have it); nothing is skipped."""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import docker
import pytest

from tests.integration.cloud import (REPO, Server, reap_dead_test_clouds, remove_leftovers, remove_networks,
                                     remove_volume_pool, vm_area)

ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env()
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure here means the engine is missing
        pytest.fail(f"dockerd is not reachable ({e}); run `make test`, which starts it")
    return client


def start_server(home: Path, **env: str) -> Server:
    """A real `pocketcloud serve` on its own home, port and libvirt network, with `tiny` built."""
    ARTIFACTS.mkdir(exist_ok=True)
    srv = Server(home, ARTIFACTS)
    srv.env.update(env)
    build = srv.cli("images", "build", "tiny", check=False)
    assert build.returncode == 0, build.stderr
    srv.start()
    return srv


def stop_and_check_leaks(srv: Server, docker_client) -> None:
    """Stop the server, remove what its tests left behind, and fail if they left anything."""
    area = vm_area(srv.home)
    srv.stop()
    instance_dirs = sorted(p.name for p in (area / "instances").glob("*"))
    volumes = remove_volume_pool(srv)  # before remove_leftovers, which removes them without a word
    leftovers, domains = remove_leftovers(srv, docker_client)
    networks = remove_networks(srv, docker_client)
    assert not networks, f"the cloud's networks could not be removed: {networks}"
    assert not leftovers, f"tests left containers behind: {leftovers}"
    assert not domains, f"tests left VMs behind: {domains}"
    assert not volumes, f"tests left volumes behind: {volumes}"
    assert not instance_dirs, f"tests left VM instance directories behind: {instance_dirs}"
    assert not area.exists(), f"{area} outlived its cloud"
    srv.forget_owner()


@pytest.fixture(scope="session", autouse=True)
def reaped(request):
    """Clean up after earlier test runs that were killed before their leak check, so their
    VMs, networks and containers neither pile up nor collide with this run's."""
    if not any("integration" in str(i.path) or "faults" in str(i.path) or "compat" in str(i.path)
               for i in request.session.items):
        return []  # unit tests alone need no engine
    gone = reap_dead_test_clouds(request.getfixturevalue("docker_client"))
    for line in gone:
        print(f"[reaped a killed run's test cloud] {line}", file=sys.stderr)
    return gone


@pytest.fixture(scope="session")
def server(tmp_path_factory, docker_client):
    srv = start_server(tmp_path_factory.mktemp("pchome"))
    yield srv
    stop_and_check_leaks(srv, docker_client)


_names = itertools.count()


@pytest.fixture
def user(server):
    """A fresh account per test, so tests never see each other's instances."""
    return server.new_user(f"u{next(_names)}-{server.port}")


@pytest.fixture
def cleanup(server):
    """Collects (api, instance id) and terminates them after the test, whatever happened."""
    made: list = []
    yield made
    for api, iid in made:
        api("DELETE", f"/instances/{iid}")


