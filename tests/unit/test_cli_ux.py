"""The CLI's rough edges, without a server: names to ids, suggestions, the shell-split
warning, the hypervisor line, complete help texts, translated exec errors, streamed build
output and the piped heartbeat."""
from __future__ import annotations

import os
import threading

import click
import pytest
from click.testing import CliRunner

from api.cli import main
from api.cli.client import ApiError
from api.cli.context import did_you_mean, pick_instance, tilde
from api.cli.instances import split_warning
from api.cli.progress import Ticker
from api.text import hypervisor_summary
from emulator.compute.driver import ExecResult
from emulator.exec_hints import explain
from emulator.images import stream_lines

A, B, C = "i-0123456789abcdef0", "i-0123456789abcdef1", "i-fedcba98765432100"
ROWS = [{"id": A, "name": "web", "state": "running"}, {"id": B, "name": "db", "state": "running"},
        {"id": C, "name": "web", "state": "terminated"}]


def test_an_id_goes_through_and_a_unique_name_becomes_its_id():
    assert pick_instance(ROWS, B) == B
    assert pick_instance(ROWS, "db") == B
    assert pick_instance(ROWS, "web") == A  # the terminated namesake does not count
    assert pick_instance(ROWS, "i-fedcba") == C  # a unique id prefix


def test_a_shared_name_is_an_error_that_lists_the_matches():
    rows = ROWS + [{"id": C, "name": "web", "state": "running"}]
    with pytest.raises(ApiError) as e:
        pick_instance([r for r in rows if r is not ROWS[2]], "web")
    assert e.value.code == "AmbiguousName" and A in e.value.message and C in e.value.message


def test_an_unknown_name_suggests_close_ones():
    with pytest.raises(ApiError) as e:
        pick_instance(ROWS, "wbe")
    assert e.value.code == "InvalidInstanceID.NotFound" and "did you mean 'web'" in e.value.message
    assert pick_instance(ROWS, "i-nothere") == "i-nothere"  # the server says what is wrong with it
    assert did_you_mean("t2.nanoo", ["t2.nano", "t2.micro", "m5.large"]) == " (did you mean 't2.nano'?)"
    assert sorted(did_you_mean("web1", ["web2", "web3", "db"]).split("'")[1::2]) == ["web2", "web3"]
    assert did_you_mean("zzz", ["t2.nano"]) == ""


@pytest.mark.parametrize("argv, says", [
    (["sh", "-c", "ps"], "your shell ran that part here"),
    (["sh", "-c", "echo", "hello"], "runs only the one argument after -c"),
    (["/bin/bash", "-c", "ls"], "runs just 'ls'"),
])
def test_a_script_the_shell_split_is_warned_about(argv, says):
    assert says in split_warning(argv)


@pytest.mark.parametrize("argv", [["uname", "-r"], ["sh", "-c", "ps; cat /proc/1/cmdline"], ["sh", "-c", "echo $X"],
                                  ["sh", "script.sh"], ["ls", "-c", "x"]])
def test_a_whole_script_is_not_warned_about(argv):
    assert split_warning(argv) is None


def test_the_hypervisor_line_says_what_and_why_and_keeps_the_probe_text_for_verbose():
    probe = ("auto: /dev/kvm exists but a KVM probe guest failed to start (internal error: qemu unexpectedly closed "
             "the monitor: kvm: ../accel/kvm/kvm-all.c: failed to set MSR 0x10a: Assertion failed); using TCG")
    line, raw = hypervisor_summary({"mode": "qemu", "accelerator": "TCG (software emulation)", "reason": probe})
    assert line.startswith("TCG (software emulation): /dev/kvm exists, but a test VM could not boot under KVM")
    assert "MSR" not in line and "Assertion" not in line and raw == probe
    line, _ = hypervisor_summary({"mode": "qemu", "reason": "auto: /dev/kvm does not exist, using TCG"})
    assert line == "TCG (software emulation): this machine has no /dev/kvm (no hardware virtualization here)"
    line, _ = hypervisor_summary({"mode": "kvm", "reason": "auto: a KVM probe guest reached userspace in 1.5s "
                                                            "(cached probe)"})
    assert line == "KVM (hardware virtualization): a test VM booted under KVM in 1.5s (probed once)"
    line, _ = hypervisor_summary({"mode": "qemu", "requested": "qemu", "reason": "configured: hypervisor=qemu (TCG)"})
    assert line == "TCG (software emulation): configured (POCKETCLOUD_HYPERVISOR=qemu)"
    line, raw = hypervisor_summary({"mode": None, "in_use": None, "reason": "no VM engine configured yet"})
    assert line.startswith("- (no VM engine") and raw is None


def _commands(cmd: click.Command, path: tuple[str, ...] = ()):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, path + (name,))


def test_every_help_text_is_complete():
    runner = CliRunner()
    for path, cmd in _commands(main):
        res = runner.invoke(main, [*path, "--help"], terminal_width=80)
        assert res.exit_code == 0, (path, res.output)
        if isinstance(cmd, click.Group):
            listing = res.output.split("Commands:", 1)[1]
            assert "..." not in listing and "…" not in listing, (path, listing)
            for name, sub in cmd.commands.items():
                first = " ".join(sub.get_short_help_str(limit=1000).split())
                assert first in " ".join(listing.split()), (path, name, first)
        assert cmd.help, f"`pocketcloud {' '.join(path)}` has no help text"


def test_a_missing_program_is_said_like_a_shell_says_it():
    oci = ('OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchcmd": '
           'executable file not found in $PATH: unknown\r\n')
    res = explain(ExecResult(126, oci, ""))
    assert res.exit_code == 127 and "OCI" not in res.stderr + res.stdout
    assert res.stderr.startswith("nosuchcmd: command not found in this instance")
    ok = ExecResult(0, "hello\n", "")
    assert explain(ok) is ok


def test_build_output_streams_line_by_line_including_carriage_returns():
    """The second line is written only after the first was read: a buffering reader would hang."""
    r, w = os.pipe()
    got: list[str] = []
    reader = stream_lines(r)

    def writer():
        os.write(w, b"first\n")
        while not got:
            threading.Event().wait(0.01)
        os.write(w, b" 10%\r 20%\rlast without newline")
        os.close(w)

    t = threading.Thread(target=writer)
    t.start()
    got.append(next(reader))
    rest = list(reader)
    t.join()
    os.close(r)
    assert got + rest == ["first", " 10%", " 20%", "last without newline"]


def test_a_piped_ticker_says_it_is_still_working(capsys):
    ctx = click.Context(main, obj={"output": "table"})
    with Ticker(ctx, "building x", heartbeat=0) as t:
        t.event("==> a step")
        t.status("downloading")
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("] ==> a step") and err[1].endswith("] … building x: downloading")
    json_ctx = click.Context(main, obj={"output": "json"})
    with Ticker(json_ctx, "quiet", heartbeat=0) as t:
        t.event("nothing")
        t.status("nothing either")
    assert capsys.readouterr().err == ""


def test_paths_under_home_are_shown_with_a_tilde(monkeypatch):
    monkeypatch.setenv("HOME", "/home/ana")
    assert tilde("/home/ana/.pocketcloud/keys/k.pem") == "~/.pocketcloud/keys/k.pem"
    assert tilde("/home/anabel/x") == "/home/anabel/x" and tilde("/tmp/x") == "/tmp/x"


class _Booting:
    """A client whose instance boots through the phases the server reports (GET /instances/ID)."""

    def __init__(self, states):
        self.states = states

    def call(self, method, path, **kw):
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def test_wait_shows_each_boot_phase_once_when_the_server_reports_them(capsys, monkeypatch):
    from api.cli import waiting

    monkeypatch.setattr(waiting.time, "sleep", lambda s: None)
    iid = "i-0123456789abcdef0"
    phase = lambda name, at: {"name": name, "at": "2026-11-30T00:00:00Z", "elapsed": at}  # noqa: E731
    first = {"id": iid, "state": "pending", "boot": {"phase": "defined", "phases": [phase("defined", 0.2)]}}
    seen = [
        {"id": iid, "state": "pending", "boot": {"phase": "kernel", "phases": [phase("defined", 0.2),
                                                                             phase("qemu-started", 0.9),
                                                                             phase("kernel", 2.5)]}},
        {"id": iid, "state": "running", "boot": {"phase": "ssh-ready", "phases": [
            phase("defined", 0.2), phase("qemu-started", 0.9), phase("kernel", 2.5), phase("network", 5.1),
            phase("ssh-ready", 6.4)]}},
    ]
    ctx = click.Context(main, obj={"output": "table"})
    assert waiting.wait_for_state(ctx, _Booting(seen), first, "running", 60)["state"] == "running"
    err = capsys.readouterr().err
    for text in ("pending", "defined (libvirt has the domain), 0.2s after launch", "QEMU started",
                 "kernel booting", "network up", "SSH ready (you can log in), 6.4s after launch", "running"):
        assert err.count(text) == 1, (text, err)
    assert err.index("QEMU started") < err.index("kernel booting") < err.index("SSH ready")


def test_wait_without_phases_shows_state_changes(capsys, monkeypatch):
    from api.cli import waiting

    monkeypatch.setattr(waiting.time, "sleep", lambda s: None)
    iid = "i-0123456789abcdef0"
    ctx = click.Context(main, obj={"output": "table"})
    waiting.wait_for_state(ctx, _Booting([{"id": iid, "state": "running"}]), {"id": iid, "state": "pending"},
                           "running", 60)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("] ", 1)[1] for line in lines if "…" not in line] == [f"{iid}: pending", f"{iid}: running"]


def test_every_console_error_has_a_next_step():
    from api.web.hints import next_step

    assert "Instances page" in next_step("InstanceLimitExceeded", "account u already has 2 instances")
    assert "launch a new one" in next_step("IncorrectInstanceState", "instance i-1 is terminated: nothing runs")
    assert "changing state" in next_step("IncorrectInstanceState", "instance i-1 is stopping")
    assert next_step("SomethingNew", "boom")  # an unknown code still gets one
    assert next_step("InvalidAMIID.NotFound", "build it first: `pocketcloud images build debian-12`") == ""


class _TourCloud:
    """Just enough of the REST API for the tour: launches, probes, internals, deletes."""

    def __init__(self):
        self.deleted: list[str] = []
        self.n = 0

    def call(self, method, path, **kw):
        if path == "/instances" and method == "GET":
            return {"instances": []}
        if path == "/info":
            return {"engines": {"container": {"available": True}, "vm": {"available": True}},
                    "hypervisor": {"mode": "qemu", "reason": "auto: /dev/kvm does not exist, using TCG"},
                    "host": {"kernel": "6.1-host"}}
        if path == "/instances" and method == "POST":
            self.n += 1
            kind = kw["json"]["kind"]
            return {"id": f"i-{self.n:017x}", "name": kw["json"]["name"], "kind": kind, "state": "running"}
        if path.endswith("/exec"):
            return {"exit_code": 0, "stdout": "6.1-host\n", "stderr": ""}
        if path.endswith("/internals"):
            return {"summary": {"isolation": "x", "host_process": "p", "host_memory_bytes": 1}}
        if method == "DELETE":
            self.deleted.append(path.rsplit("/", 1)[1])
            return {"previous_state": "running", "state": "terminated"}
        return {"id": path.rsplit("/", 1)[1], "name": "n", "state": "running", "created_at": None}


def test_the_tour_cleans_up_both_instances_unless_kept(monkeypatch):
    from api.cli import tour

    fake = _TourCloud()
    monkeypatch.setattr(tour, "client_of", lambda ctx: fake)
    res = CliRunner().invoke(main, ["-o", "json", "tour", "--no-pause"])
    assert res.exit_code == 0, res.output
    assert fake.deleted == ["i-00000000000000001", "i-00000000000000002"]
    fake.deleted.clear()
    assert CliRunner().invoke(main, ["-o", "json", "tour", "--no-pause", "--keep"]).exit_code == 0
    assert fake.deleted == []
