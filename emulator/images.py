"""The image catalog: what can be launched, of which kind, built from which recipe.

A recipe is a folder `images/NAME/` with a `build.sh OUTDIR` that needs only Debian
packages. Its outputs are cached by the hash of the recipe's files, so a rebuild
happens only when the recipe changes. `rootfs.tar` becomes the container image of that
name; the VM artefacts of the same rootfs become its VM image.

A build reports progress as lines, each passed on the moment the recipe prints it (a
carriage return counts as a line end, so progress counters stream too). Lines that start
with STEP are steps (the recipe's and the catalog's own); the rest is their output.
"""
from __future__ import annotations

import difflib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from . import validation
from .errors import CloudError, EngineError, InvalidParameter, NotFound
from .state import Store
from .timefmt import now_iso_utc

Progress = Callable[[str], None]
STEP = "==> "


def recipe_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
        h.update(b"x" if os.access(path, os.X_OK) else b"-")
    return h.hexdigest()


class Images:
    def __init__(self, store: Store, recipes_dir: Path, cache_dir: Path, docker_driver=None):
        self.store = store
        self.recipes_dir = recipes_dir
        self.cache_dir = cache_dir
        self.docker = docker_driver

    # -- catalog -----------------------------------------------------------------
    def recipes(self) -> list[str]:
        if not self.recipes_dir.is_dir():
            return []
        return sorted(p.name for p in self.recipes_dir.iterdir() if (p / "build.sh").is_file())

    def list(self) -> list[dict]:
        rows = self.store.query("SELECT * FROM images ORDER BY name, kind")
        by_name: dict[str, dict] = {}
        for r in rows:
            entry = by_name.setdefault(r["name"], {"name": r["name"], "kinds": {}, "recipe": None})
            entry["kinds"][r["kind"]] = {
                "ref": r["ref"],
                "source": r["source"],
                "size": r["size"],
                "built_at": r["created_at"],
                **json.loads(r["details"]),
            }
        for name in self.recipes():
            entry = by_name.setdefault(name, {"name": name, "kinds": {}, "recipe": None})
            current = recipe_hash(self.recipes_dir / name)
            built = {k.get("recipe_hash") for k in entry["kinds"].values()}
            entry["recipe"] = {
                "path": str(self.recipes_dir / name),
                "hash": current[:12],
                "status": "built" if current[:12] in built else ("outdated" if entry["kinds"] else "not built"),
            }
        for entry in by_name.values():
            entry["kind_names"] = sorted(entry["kinds"])
        return sorted(by_name.values(), key=lambda e: e["name"])

    def resolve(self, name: str, kind: str) -> dict:
        validation.image_name(name)
        row = self.store.one("SELECT * FROM images WHERE name=? AND kind=?", (name, kind))
        if row is None:
            other = self.store.query("SELECT kind FROM images WHERE name=?", (name,))
            if other:
                raise InvalidParameter(
                    f"image {name!r} has no {kind} variant (it has: {', '.join(r['kind'] for r in other)})",
                    code="InvalidAMIID.NotFound",
                )
            known = sorted({r["name"] for r in self.store.query("SELECT name FROM images")} | set(self.recipes()))
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = (
                f"build it first: `pocketcloud images build {name}`" if name in self.recipes()
                else f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                else "list images with `pocketcloud images ls` or GET /api/v1/images"
            )
            raise NotFound(f"image {name!r} ({kind}) is not in the catalog", code="InvalidAMIID.NotFound", hint=hint)
        return dict(row)

    def register(self, name: str, kind: str, ref: str, source: str, *, recipe_hash: str | None = None,
                 size: int | None = None, details: dict | None = None) -> None:
        validation.image_name(name)
        with self.store.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO images (name, kind, ref, source, recipe_hash, size, details, created_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (name, kind, ref, source, recipe_hash, size, json.dumps(details or {"recipe_hash": recipe_hash}), time.time()),
            )

    def register_docker(self, name: str, ref: str) -> dict:
        """Register an image from a registry (Docker Hub name) as a container image."""
        validation.image_name(name)
        if not isinstance(ref, str) or not ref or len(ref) > 255 or any(c.isspace() for c in ref):
            raise InvalidParameter("source must be a Docker image reference such as 'alpine:3.20'")
        if not self.docker.image_exists(ref):
            self.docker.pull(ref)
        self.register(name, "container", ref, f"docker:{ref}", size=self.docker.image_size(ref), details={})
        return self.resolve(name, "container")

    def unregister(self, name: str) -> None:
        validation.image_name(name)
        with self.store.tx() as c:
            n = c.execute("DELETE FROM images WHERE name=?", (name,)).rowcount
        if not n:
            raise NotFound(f"image {name!r} is not in the catalog", code="InvalidAMIID.NotFound")

    # -- building ----------------------------------------------------------------
    def build(self, name: str, progress: Progress = print, force: bool = False) -> dict:
        validation.image_name(name)
        folder = self.recipes_dir / name
        if not (folder / "build.sh").is_file():
            raise NotFound(f"no recipe {name!r} in {self.recipes_dir}", hint=f"recipes here: {', '.join(self.recipes()) or 'none'}")
        digest = recipe_hash(folder)
        out = self.cache_dir / name / digest[:12]
        with self._build_lock(name, progress):
            if force and out.exists():
                shutil.rmtree(out)
            if (out / ".done").exists():
                progress(f"{STEP}{name}: recipe unchanged ({digest[:12]}), using the cached build in {out}")
            else:
                self._run_recipe(name, folder, out, progress)
        registered = []
        if (out / "rootfs.tar").exists() and self.docker is not None:
            ref = f"pocketcloud/{name}:{digest[:12]}"
            if not self.docker.image_exists(ref):
                progress(f"{STEP}importing rootfs.tar into dockerd as {ref} (the container kind)")
                self.docker.import_rootfs(str(out / "rootfs.tar"), f"pocketcloud/{name}", digest[:12])
            self.register(name, "container", ref, f"recipe:{name}", recipe_hash=digest[:12],
                          size=self.docker.image_size(ref), details=self._manifest(out, digest))
            registered.append("container")
        if (out / "vm.json").exists():
            self.register(name, "vm", str(out), f"recipe:{name}", recipe_hash=digest[:12],
                          size=sum(p.stat().st_size for p in out.iterdir() if p.is_file()),
                          details=self._manifest(out, digest))
            registered.append("vm")
        progress(f"{STEP}{name}: ready ({', '.join(registered) or 'nothing registered'})")
        return {"name": name, "recipe_hash": digest[:12], "kinds": registered, "path": str(out)}

    @contextmanager
    def _build_lock(self, name: str, progress: Progress):
        """One build of a recipe at a time on this host: the cache is shared by every cloud
        (and test run), and two builds into one folder would each wipe the other's files."""
        folder = self.cache_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                progress(f"{STEP}another build of {name} is running on this host: waiting for it")
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @staticmethod
    def _manifest(out: Path, digest: str) -> dict:
        details = {"recipe_hash": digest[:12]}
        for f in ("manifest.json", "vm.json"):
            if (out / f).exists():
                details.update(json.loads((out / f).read_text()))
        return details

    def _run_recipe(self, name: str, folder: Path, out: Path, progress: Progress) -> None:
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        progress(f"{STEP}{name}: building from {folder} into {out}")
        started = time.monotonic()
        proc = subprocess.Popen(
            ["bash", str(folder / "build.sh"), str(tmp)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=folder, bufsize=0,
            env={**os.environ, "POCKETCLOUD_CACHE": str(self.cache_dir), "PYTHONUNBUFFERED": "1"},
        )
        tail: list[str] = []
        assert proc.stdout is not None
        try:
            for line in stream_lines(proc.stdout.fileno()):
                tail = (tail + [line])[-20:]
                progress(line)
        finally:
            proc.stdout.close()
        if proc.wait() != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise EngineError(f"recipe {name} failed (exit {proc.returncode}); last lines:\n" + "\n".join(tail))
        (tmp / ".done").write_text(now_iso_utc())
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
        progress(f"{STEP}{name}: built in {time.monotonic() - started:.1f}s")


def stream_lines(fd: int):
    """Lines from a pipe as soon as each ends (at \n or \r), without waiting for a buffer
    to fill; blank lines are dropped, the last unterminated piece is yielded at EOF."""
    pending = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        pending += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                yield text
    text = pending.decode("utf-8", "replace").rstrip()
    if text:
        yield text


__all__ = ["Images", "recipe_hash", "stream_lines", "STEP", "CloudError"]
