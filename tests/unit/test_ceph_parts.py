"""Ceph engine parts that need no cluster: engine choice with POCKETCLOUD_S3_ENGINE, the
rendered ceph.conf, health/placement wording, daemon command lines, the durability lab's
sequencing, and the stand-in's secret staying off its command line."""
from __future__ import annotations

import json
import signal

import pytest

from emulator.config import Config
from emulator.errors import BackendUnavailable
from emulator.storage.ceph import status as st
from emulator.storage.ceph.daemons import _same, argv_for, names
from emulator.storage.ceph.lab import durability
from emulator.storage.ceph.layout import ClusterState, Layout, missing_packages, render_conf
from emulator.storage.choice import choose

NOTHING = dict(which=lambda n: None, docker_image=lambda u: None, rclone=lambda: "/x/rclone")


def cfg(tmp_path, engine="auto", endpoint=""):
    return Config(home=tmp_path, s3_endpoint=endpoint, s3_engine=engine)


def with_cluster(tmp_path, bootstrapped=True):
    lay = Layout(tmp_path / "storage" / "ceph")
    lay.make_dirs()
    lay.write_state(ClusterState("f5d0c0de-0000-4000-8000-000000000001", 40001, 40002, 1 << 30,
                                 bootstrapped=bootstrapped))


def test_ceph_when_asked_and_installed(tmp_path):
    c = choose(cfg(tmp_path, "ceph"), ceph_missing=lambda: [], **NOTHING)
    assert c.engine == "ceph" and c.detail == str(tmp_path / "storage" / "ceph")
    assert "POCKETCLOUD_S3_ENGINE=ceph" in c.reason and "new cluster" in c.reason


def test_ceph_asked_but_not_installed_names_the_packages(tmp_path):
    with pytest.raises(BackendUnavailable) as e:
        choose(cfg(tmp_path, "ceph"), ceph_missing=lambda: ["ceph-osd", "radosgw"], **NOTHING)
    assert "ceph-osd radosgw" in str(e.value) and "engines.sh" in str(e.value)


def test_an_endpoint_beats_the_engine_setting(tmp_path):
    c = choose(cfg(tmp_path, "ceph", "http://127.0.0.1:9000"), ceph_missing=lambda: [], **NOTHING)
    assert c.engine == "endpoint" and "overrides POCKETCLOUD_S3_ENGINE=ceph" in c.reason


def test_auto_reuses_the_homes_cluster_after_minio_before_the_standin(tmp_path):
    with_cluster(tmp_path)
    c = choose(cfg(tmp_path), ceph_missing=lambda: [], **NOTHING)
    assert c.engine == "ceph" and "f5d0c0de" in c.reason and "no minio binary" in c.reason
    minio = choose(cfg(tmp_path), ceph_missing=lambda: [], **{**NOTHING, "which": lambda n: "/usr/bin/minio"})
    assert minio.engine == "minio"
    gone = choose(cfg(tmp_path), ceph_missing=lambda: ["ceph-mon"], **NOTHING)
    assert gone.engine == "rclone" and "Ceph packages are missing" in gone.reason


def test_auto_ignores_an_unfinished_bootstrap_and_rclone_setting_ignores_ceph(tmp_path):
    with_cluster(tmp_path, bootstrapped=False)
    assert choose(cfg(tmp_path), ceph_missing=lambda: [], **NOTHING).engine == "rclone"
    with_cluster(tmp_path)
    assert choose(cfg(tmp_path, "rclone"), ceph_missing=lambda: [], **NOTHING).engine == "rclone"


@pytest.mark.parametrize("bad", ["cephfs", "s3", "../x", "MINIO!"])
def test_unknown_engine_setting_is_a_clear_error(tmp_path, bad):
    with pytest.raises(BackendUnavailable) as e:
        choose(cfg(tmp_path, bad), ceph_missing=lambda: [], **NOTHING)
    assert "POCKETCLOUD_S3_ENGINE" in str(e.value) and "ceph" in str(e.value)


def test_minio_asked_but_absent(tmp_path):
    with pytest.raises(BackendUnavailable) as e:
        choose(cfg(tmp_path, "minio"), ceph_missing=lambda: [], **NOTHING)
    assert "no minio binary" in str(e.value)


def test_missing_packages_maps_binaries_to_debian_packages():
    assert missing_packages(which=lambda b: None) == ["ceph-common", "ceph-mgr", "ceph-mon", "ceph-osd", "radosgw"]
    assert missing_packages(which=lambda b: None if b == "radosgw" else f"/usr/bin/{b}") == ["radosgw"]


def test_conf_is_per_home_and_loopback_only(tmp_path):
    lay = Layout(tmp_path / "ceph")
    state = ClusterState("11111111-2222-4333-8444-555555555555", 41001, 41002, 2 << 30)
    conf = render_conf(lay, state)
    assert "fsid = 11111111-2222-4333-8444-555555555555" in conf
    assert "mon host = v2:127.0.0.1:41001" in conf and "endpoint=127.0.0.1:41002" in conf
    assert "osd crush chooseleaf type = 0" in conf and "tcp_nodelay=1" in conf and f"bluestore block size = {2 << 30}" in conf
    assert f"keyring = {lay.keys}/$cluster.$name.keyring" in conf
    assert "0.0.0.0" not in conf and "key =" not in conf
    assert ClusterState.from_json(state.to_json()) == state


def test_daemon_command_lines_name_the_homes_conf(tmp_path):
    lay = Layout(tmp_path / "ceph")
    assert names([0, 1, 2]) == ["mon.a", "mgr.x", "osd.0", "osd.1", "osd.2", "rgw"]
    osd = argv_for(lay, "osd.1")
    assert osd[1:] == ["-f", "-c", str(lay.conf), "-i", "1"] and osd[0].endswith("ceph-osd")
    assert argv_for(lay, "rgw")[-2:] == ["-n", "client.rgw.pc"]
    assert _same(["/usr/bin/ceph-osd", *osd[1:]], osd) and _same(["ceph-osd", *osd[1:]], osd)
    assert not _same(["/usr/bin/ceph-osd", "-f", "-c", "/other/home/ceph.conf", "-i", "1"], osd)
    assert not _same(["/usr/bin/ceph-osd", *osd[1:-1], "2"], osd)


def pg_status(states: dict, up=3, total=3, checks=None) -> dict:
    return {"health": {"status": "HEALTH_WARN" if checks else "HEALTH_OK", "checks": checks or {}},
            "osdmap": {"num_osds": total, "num_up_osds": up, "num_in_osds": total},
            "pgmap": {"num_pgs": sum(states.values()),
                      "pgs_by_state": [{"state_name": k, "count": v} for k, v in states.items()]}}


def test_serving_states():
    assert st.serving(pg_status({"active+clean": 57})) == "ok"
    assert st.serving(pg_status({"active+clean": 17, "active+undersized+degraded": 40}, up=2)) == "degraded"
    assert st.serving(pg_status({"active+clean": 57}, up=2)) == "degraded"  # down, not yet noticed in PGs
    assert st.serving(pg_status({"active+clean": 37, "peering": 20}, up=2)) == "unavailable"
    assert st.serving(pg_status({"stale+active+clean": 57})) == "unavailable"
    assert st.serving(pg_status({})) == "unavailable"


def test_health_reason_worst_first_and_summary():
    checks = {"MON_DISK_LOW": {"severity": "HEALTH_WARN", "summary": {"message": "mon a is low on available space"}},
              "OSD_DOWN": {"severity": "HEALTH_WARN", "summary": {"message": "1 osds down"}},
              "PG_AVAILABILITY": {"severity": "HEALTH_ERR", "summary": {"message": "Reduced data availability"}}}
    s = pg_status({"active+undersized": 8}, up=2, checks=checks)
    assert st.health_reason(s) == "Reduced data availability; mon a is low on available space; 1 osds down"
    tree = {"nodes": [{"type": "host", "name": "h"}, {"type": "osd", "name": "osd.0", "status": "up"},
                      {"type": "osd", "name": "osd.1", "status": "down"}]}
    summary = st.summarize(s, tree)
    assert summary["osds"] == {"total": 3, "up": 2, "in": 3, "down": ["osd.1"]}
    assert summary["pgs"] == {"total": 8, "states": {"active+undersized": 8}} and summary["serving"] == "degraded"
    assert st.health_reason(pg_status({"active+clean": 1})) == ""


def test_head_object_names_and_placement():
    assert st.head_oid("abc.41.1", "dir/k.txt") == "abc.41.1_dir/k.txt"
    assert st.head_oid("abc.41.1", "_hidden") == "abc.41.1___hidden"
    p = st.placement("data", "m_k", {"pgid": "7.3", "up": [0, 2, 1], "acting": [0, 2, 1], "acting_primary": 0},
                     {0: "/h/osd/0/block", 1: "/h/osd/1/block", 2: "/h/osd/2/block"}, {"size": 5})
    assert p["pg"] == "7.3" and p["primary"] == 0 and [r["osd"] for r in p["replicas"]] == [0, 2, 1]
    assert p["replicas"][1]["host_path"] == "/h/osd/2/block" and p["exists"] and p["size"] == 5
    assert st.placement("data", "m_k", {"acting": []}, {}, None)["exists"] is False


class FakeCluster:
    """Scripted cluster: clean, then an OSD down once killed, then clean once released."""

    def __init__(self):
        self.calls: list[str] = []
        self.down = None
        self.released_at = None

    def status(self, fresh=False):
        if self.down and self.released_at is None:
            return st.summarize(pg_status({"active+undersized+degraded": 8}, up=2,
                                          checks={"OSD_DOWN": {"severity": "HEALTH_WARN",
                                                               "summary": {"message": "1 osds down"}}}))
        return st.summarize(pg_status({"active+clean": 8}))

    def placement(self, bucket, key):
        return {"pg": "7.1", "acting": [1, 0, 2], "primary": 1}

    def hold(self, name):
        self.calls.append(f"hold {name}")

    def kill(self, name, sig=signal.SIGKILL):
        self.calls.append(f"kill {name}")
        self.down = name
        return 4242

    def release(self, name):
        self.calls.append(f"release {name}")
        self.released_at = len(self.calls)


class FakeBucket:
    bucket = "lab"

    def __init__(self, corrupt: str | None = None):
        self.objects, self.corrupt, self.log = {}, corrupt, []

    def put(self, key, data):
        self.objects[key] = data

    def get(self, key):
        self.log.append(f"get {key}")
        return b"rotten" if key == self.corrupt else self.objects[key]

    def delete(self, key):
        del self.objects[key]


def test_durability_sequence_and_counts():
    cluster, io = FakeCluster(), FakeBucket(corrupt="durability/obj-00003")
    report = durability(cluster, io, objects=5, size=10, progress=lambda line: None, timeout=5)
    assert cluster.calls == ["hold osd.1", "kill osd.1", "release osd.1"]  # the primary of the first object
    assert report["intact"] == 4 and report["osd"] == "osd.1" and io.objects == {}
    assert len(io.log) == 5  # every object read back while the OSD was down
    kinds = [e["event"].split()[0] for e in report["events"]]
    assert kinds == ["wrote", "durability/obj-00000", "killed", "cluster", "read", "released", "osd.1", "recovered:"]
    assert [s["serving"] for s in report["samples"]][-1] == "ok"
    assert any(s["serving"] == "degraded" for s in report["samples"])
    json.dumps(report)  # a chart or the CLI can take it as is


def test_durability_refuses_nonsense():
    with pytest.raises(ValueError):
        durability(FakeCluster(), FakeBucket(), objects=0)


def test_standin_gets_its_secret_from_the_environment(tmp_path, monkeypatch):
    from emulator.storage import backend as mod

    seen = {}

    class Proc:
        pid = 1

        def __init__(self, argv, env, **kw):
            seen.update(argv=argv, env=env)

    monkeypatch.setattr(mod.subprocess, "Popen", Proc)
    b = mod.Backend(Config(home=tmp_path), mod.Choice("rclone", "/x/rclone", "unit test"))
    b.access_key, b.secret_key = "PCROOTKEY", "s3cr3t-s3cr3t-s3cr3t"
    b._start_process(4242, tmp_path)
    assert not any("s3cr3t" in a for a in seen["argv"]) and "--auth-key" not in seen["argv"]
    assert seen["env"]["RCLONE_AUTH_KEY"] == '"PCROOTKEY,s3cr3t-s3cr3t-s3cr3t"'


def test_placement_is_only_for_ceph_and_only_when_serving(tmp_path):
    from emulator.storage import backend as mod

    standin = mod.Backend(Config(home=tmp_path), mod.Choice("rclone", "/x/rclone", "unit test"))
    assert standin.placement("bkt", "k") is None
    ceph = mod.Backend(Config(home=tmp_path), mod.Choice("ceph", str(tmp_path / "storage" / "ceph"), "unit test"))
    ceph._ceph, ceph.status, ceph.last_error = object(), "starting", "Ceph is starting: mon up (0.4 s)"
    with pytest.raises(BackendUnavailable) as e:
        ceph.placement("bkt", "k")
    assert "mon up" in str(e.value)


def test_a_big_daemon_log_is_rotated_and_the_daemon_told(tmp_path, monkeypatch):
    from emulator.storage.ceph.daemons import Daemon

    lay = Layout(tmp_path / "ceph")
    lay.make_dirs()
    d = Daemon(lay, "rgw")
    sent = []
    monkeypatch.setattr(d, "signal", sent.append)
    assert d.rotate_log(limit=10) is False  # no log yet
    d.log_path().write_bytes(b"x" * 5)
    assert d.rotate_log(limit=10) is False and not sent
    d.log_path().write_bytes(b"y" * 11)
    assert d.rotate_log(limit=10) is True and sent == [signal.SIGHUP]
    assert not d.log_path().exists() and (lay.log / "ceph-client.rgw.pc.log.1").read_bytes() == b"y" * 11
