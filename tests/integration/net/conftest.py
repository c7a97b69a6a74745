"""One lab per session: two VPCs (the first with two subnets bound to Docker networks), security
groups covering every rule kind, and namespaces as instances. Tests that change rules restore
them (fixture `restore`). The session ends with a leak check of everything the lab made."""

from __future__ import annotations

import pytest

from emulator.networks.model import Rule

from tests.integration.cloud import REPO

from .lab import Lab

ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="session")
def lab(tmp_path_factory, docker_client):
    lab = Lab(tmp_path_factory.mktemp("net"), docker_client)
    try:
        v1, v2 = lab.vpc(), lab.vpc()
        a, b, c = lab.subnet(v1), lab.subnet(v1), lab.subnet(v2, docker=False)
        web = lab.group(v1, ingress=[Rule("tcp", 80, 80, peer_cidr="0.0.0.0/0"),
                                     Rule("icmp", 8, -1, peer_cidr=v1.cidr)])
        client = lab.group(v1)
        db = lab.group(v1, ingress=[Rule("tcp", 5432, 5432, peer_group=web.id)])
        dflt = lab.group(v1)
        lab.set_rules(dflt.id, ingress=[Rule("all", peer_group=dflt.id)])
        locked = lab.group(v1, egress=[Rule("tcp", 80, 80, peer_cidr=v1.cidr)])
        wide_open = lab.group(v2, ingress=[Rule("all", peer_cidr="0.0.0.0/0")])
        lab.namespace("a_web", a, [web])
        lab.namespace("a_client", a, [client])
        lab.namespace("a_db", a, [db])
        lab.namespace("a_def1", a, [dflt])
        lab.namespace("a_locked", a, [locked])
        lab.namespace("b_web", b, [web])
        lab.namespace("b_def2", b, [dflt])
        lab.namespace("c_open", c, [wide_open])
        lab.names = {"v1": v1, "v2": v2, "a": a, "b": b, "c": c, "web": web, "client": client, "db": db,
                     "dflt": dflt, "locked": locked, "open": wide_open}
        lab.apply()
        yield lab
    finally:
        if lab.matrix:
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "net-matrix.md").write_text(lab.matrix_text())
            print("\nconnectivity matrix (artifacts/net-matrix.md):\n" + lab.matrix_text())
        errors = lab.close()
        leaks = lab.leaks()
        assert not errors, f"clean-up failed: {errors}"
        assert not leaks, f"the network tests left things behind: {leaks}"


@pytest.fixture
def restore(lab):
    """Puts groups, VPCs, ports and forwards back as they were after the test."""
    saved = (dict(lab.groups), dict(lab.vpcs), dict(lab.ports), list(lab.forwards), lab.imds_port)
    yield lab
    lab.groups, lab.vpcs, lab.ports, lab.forwards, lab.imds_port = (dict(saved[0]), dict(saved[1]), dict(saved[2]),
                                                                     list(saved[3]), saved[4])
    lab.apply()


@pytest.fixture(scope="session")
def outside(lab):
    """A namespace standing for the internet (see Lab.outside)."""
    return lab.outside()


@pytest.fixture(scope="session")
def rogue(lab):
    """The namespace name of an unpinned port on subnet a (see Lab.rogue)."""
    return lab.rogue(lab.names["a"])
