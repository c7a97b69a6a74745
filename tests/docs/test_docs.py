"""README.md and docs/*.md as tests: every command block runs, in order, in one shell,
against a real pocketcloud on a fresh home, and its output must match what the doc shows
(tests/docs/mdrun.py has the convention). A doc that drifts from the product fails here.

Each doc gets its own server (started the way `make up` starts it, when the doc says so),
home, port and libvirt network, in a scratch directory that is also $HOME and the working
directory, with `.venv` linked in (so `export PATH=$PWD/.venv/bin:$PATH` works as in a
checkout). The image cache is the real one: `images build` reuses a recipe built before.
The doc as this run saw it (real outputs in place) is written to artifacts/docs/."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from emulator.config import Config
from tests.docs import mdrun
from tests.integration.cloud import REPO, Server, remove_leftovers

pytestmark = pytest.mark.integration

# Every doc with a shell block that runs. A doc of prose and code samples in other languages
# has nothing to run; one whose every block says why it is not run (it needs a Ceph cluster,
# other machines, or shows a captured run) is checked for those reasons only.
ALL_DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DOCS = [d for d in ALL_DOCS if any(b.mode != "skip" for b in mdrun.parse(d.read_text()))]
OUT = REPO / "artifacts" / "docs"
COMMAND_TIMEOUT = 900  # the longest: a debian-12 build on an empty cache


class Shell:
    """One bash for a whole doc: variables, exports and `cd` carry from block to block."""

    def __init__(self, cwd: Path, env: dict[str, str]):
        self.cwd, self.n = cwd, 0
        self.proc = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=cwd, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.marker = f"__docs_{uuid.uuid4().hex}__"

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, float]:
        """(exit code, stdout and stderr as a terminal interleaves them, seconds)."""
        self.n += 1
        script, out = self.cwd / f".docs-cmd-{self.n}.sh", self.cwd / f".docs-out-{self.n}"
        script.write_text(command + "\n")
        started = time.monotonic()
        self.proc.stdin.write(f'source {script} > {out} 2>&1 < /dev/null; echo "{self.marker} $?"\n')
        self.proc.stdin.flush()
        deadline = started + timeout
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the shell exited while running: {command}")
            if line.startswith(self.marker):
                rc = int(line.split()[1])
                break
            if time.monotonic() > deadline:
                raise TimeoutError(command)
        text = out.read_text(errors="replace")
        script.unlink()
        out.unlink()
        return rc, text, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def _session(tmp: Path) -> tuple[Server, Path, dict[str, str]]:
    home = tmp / "home"
    home.mkdir()
    os.symlink(REPO / ".venv", home / ".venv")
    srv = Server(home / ".pocketcloud", REPO / "artifacts")
    env = {k: v for k, v in srv.env.items() if not k.startswith("AWS_")}
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", TERM="dumb", POCKETCLOUD_CACHE=str(Config().cache_dir),
               LC_ALL="C.UTF-8")
    env.pop("POCKETCLOUD_ENDPOINT", None)
    srv.env = env
    return srv, home, env


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_doc_runs_as_written(doc: Path, tmp_path, docker_client):
    blocks = mdrun.parse(doc.read_text())
    srv, home, env = _session(tmp_path)
    shell = Shell(home, env)
    bindings = {"4566": str(srv.port)}  # `make up` serves on 4566; this run's server on its own port
    report: list[str] = []
    failures: list[str] = []
    started = time.monotonic()
    try:
        for block in blocks:
            where = f"{doc.name}:{block.line}"
            if block.mode == "skip":
                report.append(f"{where}  not run: {block.reason}")
                continue
            if block.mode == "background":
                assert [shlex.split(s.command, comments=True) for s in block.steps] == [["make", "up"]], (
                    f"{where}: the docs test runs only `make up` in the background, not {block.text!r}")
                build = srv.cli("images", "build", "tiny", check=False)
                assert build.returncode == 0, build.stderr
                srv.start()
                lines = srv.log_path.read_text().splitlines()
                ours = [ln for ln in lines if not ln.startswith("[")][:len(block.steps[0].expected)]
                why = mdrun.match_output(block.steps[0].expected, "\n".join(ours), bindings)
                report.append(f"{where}  background: make up -> pocketcloud serve on port {srv.port}")
                if why:
                    failures.append(f"{where} `make up` printed something else: {why}")
                continue
            for step in block.steps:
                missing = mdrun.unbound(mdrun.substitute(step.command, bindings))
                assert not missing, f"{where}: {missing} used before an output bound it: {step.command}"
                command = mdrun.substitute(step.command, bindings)
                rc, out, secs = shell.run(command)
                shown = step.expected if step.prompt else []
                wants_error = any(e.lstrip().startswith("error:") for e in shown)
                report.append(f"{where}  {secs:6.1f}s  rc={rc}  $ {command.splitlines()[0][:100]}")
                report.extend(f"    | {ln}" for ln in out.splitlines()[:400])
                problem = None
                if wants_error != (rc != 0):
                    problem = (f"exit code {rc}, but the doc shows " + ("an error" if wants_error else "success"))
                elif step.prompt:
                    problem = mdrun.match_output(step.expected, out, bindings)
                else:
                    for fragment in step.fragments:
                        problem = problem or mdrun.match_fragment(fragment, out, bindings)
                if problem:
                    failures.append(f"{where} (doc line {step.line}) `{command.splitlines()[0]}`:\n{problem}\n"
                                    f"--- whole output ---\n{out[-3000:]}")
                    raise _Stop()
    except _Stop:
        pass
    finally:
        shell.close()
        srv.stop()
        leftovers = remove_leftovers(srv, docker_client)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{doc.stem}.log").write_text("\n".join(report) + f"\n(total {time.monotonic() - started:.0f}s)\n")
        shutil.rmtree(home / ".pocketcloud" / "vms", ignore_errors=True)
    assert not failures, failures[0]
    assert not any(leftovers), f"{doc.name} left instances behind: {leftovers} (its last block should clean up)"


class _Stop(Exception):
    """The first mismatch ends a doc's run: later blocks depend on earlier ones."""


def test_the_readme_and_the_guide_are_run():
    assert {REPO / "README.md", REPO / "docs" / "getting-started.md"} <= set(DOCS)
    for doc in DOCS:
        assert any(b.mode == "run" for b in mdrun.parse(doc.read_text())), f"{doc.name}: no block runs"
    for doc in set(ALL_DOCS) - set(DOCS):  # the blocks of the others each say why they are not run
        assert all(b.mode == "skip" and b.reason for b in mdrun.parse(doc.read_text())), doc.name


NAMES = re.compile(r"--name[= ](\S+)|keys create (\S+)|--key-name[= ](\S+)|s3://([a-z0-9.-]+)|buckets mb (\S+)")


def test_the_docs_use_names_of_their_own():
    """A student who follows the README and then the guide on one cloud never meets "already
    exists" or an ambiguous name: instance, key and bucket names differ between docs."""
    seen: dict[str, str] = {}
    for doc in DOCS:
        names = set()
        for block in mdrun.parse(doc.read_text()):
            for step in block.steps:
                names |= {n for m in NAMES.finditer(step.command) for n in m.groups() if n}
        for name in names:
            assert name not in seen, f"{name!r} is used by both {seen[name]} and {doc.name}"
            seen[name] = doc.name
    assert {"web", "mykey", "course-notes", "readme-cli"} <= set(seen)
