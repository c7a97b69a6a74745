"""Ceph beyond one host, without a cluster: the cluster's address in ceph.conf, the other
machine's ceph.conf, the SSH command lines (validated, keys only on stdin), add-host's steps,
refusals and roll-back, remove-host's safety check, hosts from `ceph osd tree`, the engine
view of an object on the stand-in, the admin-only and Ceph-only refusals, and the durability
lab's report (timeline, Markdown, chart) and REST adapter."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from emulator.errors import (AlreadyExists, BackendUnavailable, Forbidden, InvalidParameter, InvalidState,
                             NotFound)
from emulator.storage.ceph import hosts as h
from emulator.storage.ceph import remote as rm
from emulator.storage.ceph import status as st
from emulator.storage.ceph.layout import ClusterState, Layout, render_conf

FSID = "0badcafe-1111-4222-8333-444455556666"
KEY = "AQBsecretsecretsecretsecretsecretsecret=="

TREE = {"nodes": [
    {"id": -1, "name": "default", "type": "root", "children": [-3, -5]},
    {"id": -3, "name": "pc-main", "type": "host", "children": [0, 1, 2]},
    {"id": -5, "name": "h2", "type": "host", "children": [3]},
    {"id": 0, "name": "osd.0", "type": "osd", "status": "up", "reweight": 1},
    {"id": 1, "name": "osd.1", "type": "osd", "status": "down", "reweight": 1},
    {"id": 2, "name": "osd.2", "type": "osd", "status": "up", "reweight": 1},
    {"id": 3, "name": "osd.3", "type": "osd", "status": "up", "reweight": 0},
]}


def state(address="10.77.0.1", **kw) -> ClusterState:
    return ClusterState(FSID, 41001, 41002, 2 << 30, osds=[{"id": i, "uuid": f"u{i}"} for i in range(3)],
                        bootstrapped=True, address=address, version="16.2.15", **kw)


def test_a_multi_host_cluster_binds_mon_and_osds_to_its_address_and_rgw_to_loopback(tmp_path):
    conf = render_conf(Layout(tmp_path / "ceph"), state())
    assert "mon host = v2:10.77.0.1:41001" in conf
    assert "public addr = 10.77.0.1" in conf and "cluster addr = 10.77.0.1" in conf
    assert "beast endpoint=127.0.0.1:41002" in conf and "127.0.0.1:41001" not in conf
    assert ClusterState.from_json(state().to_json()) == state()
    legacy = json.loads(state().to_json())
    del legacy["address"], legacy["hosts"]  # a cluster.json of phase 1
    assert ClusterState.from_json(json.dumps(legacy)).address == "127.0.0.1"


def test_the_other_machines_conf_names_the_monitor_its_address_and_crush_host():
    conf = rm.render_remote_conf(state(), rm.Remote("/srv/pc"), "10.77.0.2", "h2", 1 << 30)
    assert f"fsid = {FSID}" in conf and "mon host = v2:10.77.0.1:41001" in conf
    assert "public addr = 10.77.0.2" in conf and "crush location = root=default host=h2" in conf
    assert "keyring = /srv/pc/keys/$cluster.$name.keyring" in conf and "osd data = /srv/pc/osd/$id" in conf
    assert "pid file = /srv/pc/run/$cluster-$name.pid" in conf and "key =" not in conf


@pytest.mark.parametrize("target", ["-oProxyCommand=touch /tmp/x", "root@host;reboot", "a b", "", "root@-x",
                                    "root@" + "h" * 300])
def test_ssh_targets_that_could_be_options_or_shell_are_refused(target):
    with pytest.raises(InvalidParameter):
        rm.Ssh(target)


def test_ssh_command_line_is_batch_mode_with_the_script_quoted(tmp_path):
    key = tmp_path / "id"
    key.write_text("k")
    argv = rm.Ssh("root@10.77.0.2", port=2222, identity=str(key)).argv("echo 'a b'; hostname")
    assert argv[:3] == ["ssh", "-o", "BatchMode=yes"] and ["-p", "2222"] == argv[argv.index("-p"):argv.index("-p") + 2]
    assert argv[-3:] == ["--", "root@10.77.0.2", "sh -c 'echo '\"'\"'a b'\"'\"'; hostname'"]
    with pytest.raises(InvalidParameter):
        rm.Ssh("root@10.77.0.2", identity="relative/key")
    with pytest.raises(InvalidParameter):
        rm.Ssh("root@10.77.0.2", port=70000)


def test_hosts_and_osd_hosts_from_the_osd_tree():
    assert st.osd_hosts(TREE) == {0: "pc-main", 1: "pc-main", 2: "pc-main", 3: "h2"}
    hosts = st.hosts(TREE)
    assert [x["name"] for x in hosts] == ["h2", "pc-main"]
    assert hosts[0]["osds"] == [{"id": 3, "name": "osd.3", "status": "up", "in": False}]
    assert [o["status"] for o in hosts[1]["osds"]] == ["up", "down", "up"]
    p = st.placement("data", "m_k", {"pgid": "7.3", "acting": [3, 0, 2], "acting_primary": 3},
                     {3: "/srv/pc/osd/3/block"}, {"size": 1}, st.osd_hosts(TREE))
    assert [(r["osd"], r["host"]) for r in p["replicas"]] == [(3, "h2"), (0, "pc-main"), (2, "pc-main")]


class FakeSsh(rm.Ssh):
    """Records what would run over SSH; answers the probe; can fail one step."""

    def __init__(self, target="root@10.77.0.2", fail_on: str | None = None, probe_dir="new"):
        super().__init__(target)
        object.__setattr__(self, "calls", [])
        object.__setattr__(self, "fail_on", fail_on)
        object.__setattr__(self, "probe_dir", probe_dir)

    def run(self, command, *, stdin=b"", timeout=120, what=""):
        self.calls.append((what, command, stdin))
        if self.fail_on and self.fail_on == what:
            raise BackendUnavailable(f"ssh {self.target}: {what} failed (1): boom")
        if what == "probe":
            return f"h2\nceph version 16.2.15 (x) pacific (stable)\nplain\n{self.probe_dir}\n"
        return ""


class FakeCluster:
    """The CephCluster surface add/remove-host use, over a real Layout and scripted `ceph` answers."""

    def __init__(self, root: Path, st_: ClusterState, ok_to_stop=True):
        self.layout = Layout(root)
        self.layout.make_dirs()
        self.layout.write_state(st_)
        self.ceph_calls: list[tuple] = []
        self.next_id = 3
        self.ok_to_stop = ok_to_stop

    @property
    def state(self):
        return self.layout.read_state()

    def ceph(self, *args, timeout=20, fmt="json"):
        self.ceph_calls.append(args)
        if args[:2] == ("osd", "tree"):
            up = [{"id": i, "name": f"osd.{i}", "type": "osd", "status": "up", "reweight": 1} for i in range(5)]
            return {"nodes": [{"id": -3, "name": "pc-main", "type": "host", "children": [0, 1, 2]}, *up]}
        if args[:2] == ("osd", "new"):
            self.next_id += 1
            return f"{self.next_id - 1}\n"
        if args[:2] == ("auth", "get-or-create"):
            return f"[{args[2]}]\n\tkey = {KEY}\n"
        if args[:2] == ("osd", "ok-to-stop") and not self.ok_to_stop:
            raise BackendUnavailable("Ceph: ceph osd ok-to-stop failed (16): 3 PGs would become inactive")
        return ""


def _untar(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()}


def test_add_host_copies_keys_on_stdin_only_and_records_the_host(tmp_path):
    cluster, ssh = FakeCluster(tmp_path / "ceph", state()), FakeSsh()
    rec = h.add_host(cluster, ssh, address="10.77.0.2", name="h2", osds=2, data_dir="/srv/pc", progress=lambda m: None,
                     timeout=5)
    assert [o["id"] for o in rec["osds"]] == [3, 4] and set(rec["timings"]) == {"probe", "keys", "copy", "mkfs", "up"}
    steps = [c[0] for c in ssh.calls]
    assert steps == ["probe", "copying ceph.conf and the keyrings", "ceph-osd --mkfs", "starting osd.3",
                     "starting osd.4"]
    assert all(KEY not in " ".join(ssh.argv(cmd)) for _, cmd, _ in ssh.calls)  # never on a command line
    files = _untar(ssh.calls[1][2])
    assert KEY.encode() in files["keys/ceph.osd.3.keyring"][1] and files["keys/ceph.osd.3.keyring"][0].mode == 0o600
    assert files[".pocketcloud-ceph"][1] == FSID.encode() and b"host=h2" in files["ceph.conf"][1]
    assert files["osd/4"][0].isdir() and files["osd/4"][0].mode == 0o700
    assert "--osd-uuid" in ssh.calls[2][1] and "/srv/pc/osd/3" in ssh.calls[1][1]  # a reused id's old dir goes
    saved = cluster.state.hosts
    assert saved[0]["name"] == "h2" and saved[0]["ssh"] == {"target": "root@10.77.0.2"} and KEY not in json.dumps(saved)
    with pytest.raises(AlreadyExists):
        h.add_host(cluster, FakeSsh(), address="10.77.0.2", name="h3", progress=lambda m: None)


def test_a_failed_add_rolls_back_ids_daemons_and_directory(tmp_path):
    cluster, ssh = FakeCluster(tmp_path / "ceph", state()), FakeSsh(fail_on="ceph-osd --mkfs")
    with pytest.raises(BackendUnavailable):
        h.add_host(cluster, ssh, address="10.77.0.2", name="h2", data_dir="/srv/pc", progress=lambda m: None)
    assert ("osd", "purge", "3", "--yes-i-really-mean-it") in cluster.ceph_calls
    assert ssh.calls[-1][0] == "removing the data directory" and FSID in ssh.calls[-1][1]
    assert cluster.state.hosts == []
    # a directory that was there before is not removed by a roll-back
    cluster2, ssh2 = FakeCluster(tmp_path / "ceph2", state()), FakeSsh(fail_on="ceph-osd --mkfs", probe_dir=FSID)
    with pytest.raises(BackendUnavailable):
        h.add_host(cluster2, ssh2, address="10.77.0.2", name="h2", data_dir="/srv/pc", progress=lambda m: None)
    assert all(c[0] != "removing the data directory" for c in ssh2.calls)


@pytest.mark.parametrize("kw,err", [
    ({"address": "127.0.0.2"}, InvalidParameter), ({"address": "10.77.0.1"}, InvalidParameter),
    ({"address": "nope"}, InvalidParameter), ({"osds": 0}, InvalidParameter), ({"osds": 9}, InvalidParameter),
    ({"data_dir": "relative"}, InvalidParameter), ({"data_dir": "/srv/../etc"}, InvalidParameter),
    ({"data_dir": "/srv/a b"}, InvalidParameter), ({"data_dir": "/"}, InvalidParameter),
    ({"data_dir": "/x;rm -rf /"}, InvalidParameter), ({"name": "Bad_Name"}, InvalidParameter),
    ({"name": "pc-main"}, AlreadyExists), ({"osd_size": 1 << 20}, InvalidParameter),
])
def test_add_host_refuses_bad_input_before_touching_anything(tmp_path, kw, err):
    cluster, ssh = FakeCluster(tmp_path / "ceph", state()), FakeSsh()
    with pytest.raises(err):
        h.add_host(cluster, ssh, **{"address": "10.77.0.2", **kw}, progress=lambda m: None)
    assert not any(c[:2] == ("osd", "new") for c in cluster.ceph_calls)
    assert all(c[0] == "probe" for c in ssh.calls)


def test_add_host_refuses_a_loopback_cluster_a_foreign_dir_and_a_missing_ceph_osd(tmp_path):
    with pytest.raises(InvalidState) as e:
        h.add_host(FakeCluster(tmp_path / "a", state("127.0.0.1")), FakeSsh(), address="10.77.0.2")
    assert e.value.code == "SingleHostCluster" and "POCKETCLOUD_CEPH_ADDRESS" in str(e.value)
    with pytest.raises(InvalidState) as e:
        h.add_host(FakeCluster(tmp_path / "b", state()), FakeSsh(probe_dir="foreign"), address="10.77.0.2")
    assert "not this cluster's" in str(e.value)

    class NoCeph(FakeSsh):
        def run(self, command, **kw):
            return "h2\nmissing\nplain\nnew\n"

    with pytest.raises(BackendUnavailable) as e:
        h.add_host(FakeCluster(tmp_path / "c", state()), NoCeph(), address="10.77.0.2")
    assert "apt-get install" in str(e.value)
    with pytest.raises(NotFound):
        h.add_host(FakeCluster(tmp_path / "d", ClusterState(FSID, 1, 2, 3)), FakeSsh(), address="10.77.0.2")


def test_remove_host_checks_safety_then_stops_purges_and_forgets(tmp_path):
    cluster = FakeCluster(tmp_path / "ceph", state(), ok_to_stop=False)
    h.add_host(cluster, FakeSsh(), address="10.77.0.2", name="h2", data_dir="/srv/pc", progress=lambda m: None)
    ssh = FakeSsh()
    with pytest.raises(InvalidState) as e:
        h.remove_host(cluster, "h2", ssh=ssh, progress=lambda m: None)
    assert e.value.code == "NotSafeToRemove" and cluster.state.hosts
    assert not any(c[:2] == ("osd", "out") for c in cluster.ceph_calls)
    cluster.ok_to_stop = True
    out = h.remove_host(cluster, "h2", ssh=ssh, progress=lambda m: None)
    assert out["osds"] == [3] and cluster.state.hosts == []
    assert [c[0] for c in ssh.calls] == ["stopping osd.3", "removing the data directory"]
    order = [c[:2] for c in cluster.ceph_calls if c[:2] in (("osd", "out"), ("osd", "purge"), ("osd", "crush"))]
    assert order == [("osd", "out"), ("osd", "purge"), ("osd", "crush")]
    with pytest.raises(NotFound):
        h.remove_host(cluster, "h2", ssh=ssh)


def test_engine_admin_is_for_admins_and_ceph_only(tmp_path):
    from emulator.config import Config
    from emulator.storage import backend as mod
    from emulator.storage.engine_admin import EngineAdmin

    class Acct:
        def __init__(self, admin):
            self.is_admin = admin

    class S(EngineAdmin):
        backend = mod.Backend(Config(home=tmp_path), mod.Choice("rclone", "/x/rclone", "unit test"))

    with pytest.raises(Forbidden):
        S().engine_cluster(Acct(False))
    with pytest.raises(InvalidState) as e:
        S().kill_engine_daemon(Acct(True), "osd.0")
    assert e.value.code == "NotACluster" and "POCKETCLOUD_S3_ENGINE=ceph" in str(e.value)


def test_object_view_on_the_standin_stays_inside_the_bucket(tmp_path):
    from emulator.config import Config
    from emulator.storage import backend as mod
    from emulator.storage.engine_admin import EngineAdmin

    class S(EngineAdmin):
        backend = mod.Backend(Config(home=tmp_path), mod.Choice("rclone", "/x/rclone", "unit test"))

    data = tmp_path / "data"
    (data / "bkt" / "a").mkdir(parents=True)
    (data / "bkt" / "a" / "~k.txt").write_bytes(b"12345")   # the key 'a/k.txt', encoded (keynames.py)
    base = {"bucket": "bkt", "engine": {"engine": "rclone", "data_dir": str(data)}, "request_path": ["x"]}
    seen = S().engine_view(dict(base), "a/k.txt")["object"]
    assert seen["exists"] and seen["size"] == 5 and seen["host_path"] == str(data / "bkt" / "a" / "~k.txt")
    seen = S().engine_view(dict(base), "/etc/passwd")["object"]   # a key like any other, inside the bucket
    assert not seen["exists"] and seen["host_path"] == str(data / "bkt" / "~~" / "etc" / "~passwd")
    with pytest.raises(InvalidParameter):   # dot segments are refused keys
        S().engine_view(dict(base), "../other/k")


REPORT = {
    "objects": 3, "size": 10, "osd": "osd.1", "intact": 3, "seconds_to_detect": 4.1, "seconds_degraded": 6.0,
    "seconds_to_recover": 9.5, "cluster": {"fsid": FSID, "version": "16.2.15", "osds": 3, "pgs": 57,
                                           "hosts": ["pc-main"]},
    "events": [{"t": 0.5, "event": "wrote 3 objects of 10 bytes"},
               {"t": 1.0, "event": "durability/obj-00000 lives in PG 7.1 on OSDs [1, 0, 2] (primary osd.1)",
                "placement": {"key": "durability/obj-00000", "object": "m_durability/obj-00000", "pool": "data",
                              "pg": "7.1", "replicas": [{"osd": 1, "host": "pc-main", "host_path": "/h/osd/1/block"}]}},
               {"t": 1.2, "event": "killed osd.1 (pid 42) with SIGKILL and held it down"},
               {"t": 5.3, "event": "cluster sees osd.1 down: HEALTH_WARN (1 osds down); serving: degraded"},
               {"t": 7.2, "event": "released osd.1: restarting it"},
               {"t": 16.7, "event": "recovered: all 57 PGs active+clean; HEALTH_OK"}],
    "samples": [{"t": 0.6, "osds_up": 3, "osds_total": 3, "serving": "ok", "health": "HEALTH_OK",
                 "pgs": {"active+clean": 57}},
                {"t": 5.3, "osds_up": 2, "osds_total": 3, "serving": "degraded", "health": "HEALTH_WARN",
                 "pgs": {"active+undersized+degraded": 40, "active+clean": 17}},
                {"t": 16.7, "osds_up": 3, "osds_total": 3, "serving": "ok", "health": "HEALTH_OK",
                 "pgs": {"active+clean": 57}}],
}


def test_durability_report_timeline_markdown_and_chart(tmp_path):
    from api.cli import lab_durability as lab

    assert lab.timeline(REPORT)[2] == ("1.2", "killed osd.1 (pid 42) with SIGKILL and held it down")
    assert ("read back intact while it was down", "3/3") in lab.summary(REPORT)
    md = lab.markdown(REPORT, "durability.png")
    assert "| 16.7 | recovered: all 57 PGs active+clean; HEALTH_OK |" in md
    assert "placement group 7.1" in md and "osd.1 on pc-main (/h/osd/1/block)" in md and "![" in md
    lab.chart(tmp_path / "d.png", REPORT)
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_labs_rest_adapter_holds_in_the_kill_call_and_says_503_is_unavailable():
    from api.cli import lab_durability as lab
    from api.cli.client import ApiError

    class Client:
        def __init__(self):
            self.calls, self.fail = [], None

        def call(self, method, path, **kw):
            self.calls.append((method, path, kw.get("json")))
            if self.fail:
                raise self.fail
            if path == "/storage/cluster":
                return {"daemons": {"osd.0": {}, "rgw": {}}}
            return {"pid": 7}

    c = Client()
    rc = lab.RestCluster(c)
    rc.status()
    assert rc.killable("osd.0") and not rc.killable("osd.3")
    rc.hold("osd.0")
    assert rc.kill("osd.0") == 7 and c.calls[-1] == ("POST", "/storage/daemons/osd.0/kill", {"hold": True})
    rc.release("osd.0")
    assert c.calls[-1][1] == "/storage/daemons/osd.0/release"
    c.fail = ApiError(503, "ServiceUnavailable", "Ceph: ceph status did not answer")
    with pytest.raises(BackendUnavailable):
        rc.status()
    c.fail = ApiError(409, "NotACluster", "the storage engine is rclone serve s3 (embedded stand-in), one process. x")
    with pytest.raises(ApiError) as e:
        lab.require_ceph(c)
    assert "POCKETCLOUD_S3_ENGINE=ceph" in e.value.message and "rclone" in e.value.message


def test_remove_host_with_force_forgets_a_machine_that_cannot_be_reached(tmp_path):
    cluster = FakeCluster(tmp_path / "ceph", state())
    h.add_host(cluster, FakeSsh(), address="10.77.0.2", name="h2", data_dir="/srv/pc", progress=lambda m: None)
    st_ = cluster.state
    st_.hosts[0]["ssh"] = {"target": "root@10.77.0.2", "identity": str(tmp_path / "gone-key")}
    cluster.layout.write_state(st_)
    with pytest.raises(InvalidParameter):
        h.remove_host(cluster, "h2", progress=lambda m: None)
    assert cluster.state.hosts and not any(c[:2] in (("osd", "out"), ("osd", "purge")) for c in cluster.ceph_calls)
    out = h.remove_host(cluster, "h2", force=True, progress=lambda m: None)
    assert len(out["problems"]) == 2 and "gone-key" in out["problems"][0] and cluster.state.hosts == []
    assert ("osd", "purge", "3", "--yes-i-really-mean-it") in cluster.ceph_calls


def test_a_just_spawned_daemon_is_running_though_its_command_line_is_not_readable_yet(tmp_path, monkeypatch):
    """Right after exec, /proc/PID/cmdline reads empty for a moment; a status read that lands
    there must not forget the daemon (it then ran on unmanaged, and a bootstrap failed)."""
    import subprocess
    import sys

    from emulator.storage.ceph import daemons

    lay = Layout(tmp_path / "ceph")
    lay.make_dirs()
    d = daemons.Daemon(lay, "rgw")
    d.argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    d.spawn()
    try:
        monkeypatch.setattr(daemons, "_cmdline", lambda pid: None)  # the moment after exec
        assert d.running() and d.pid is not None
        d.proc.kill()
        d.proc.wait()
        assert not d.running() and d.last_exit == "killed by SIGKILL" and d.pid is None
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
    adopted = daemons.Daemon(lay, "rgw")
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        adopted.adopt(p.pid)  # not our child: a pid whose command line is not the daemon's is not it
        assert not adopted.running() and adopted.last_exit == "exited"
    finally:
        p.kill()
        p.wait()
