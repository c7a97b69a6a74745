"""The stand-in's files moved to the key encoding of keynames.py, once, before it starts.

Homes written before issue 19 hold each object as the file at its key's path (`a/b` is the
file `b` in the folder `a`). That layout is read back by path and moved to the encoded names
while the engine is not running, in three journaled phases so that a kill at any moment is
finished by the next start:

1. every object file moves to a staging folder beside the data (its encoded name there):
   no encoded name can then meet an old file or folder still in place;
2. the old, now empty, folders go;
3. every staged file moves to its encoded name in its bucket.

Temp files of the stand-in (`*.partial`) are left where they are (they are no object's).
Folder markers the old gateway kept in its index only are recreated by the facade after
the engine starts (`Storage.start`), and reconcile checks index and engine both ways.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from . import keynames

log = logging.getLogger("pocketcloud.storage")

LAYOUT = "keynames-1"


def _write(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def migrate(storage_dir: Path, data_dir: Path) -> int:
    """Move a data folder of the old layout to keynames.py names; the count of objects moved
    (0 when already done or nothing to move). Idempotent; resumes after a kill."""
    mark = storage_dir / "layout"
    if mark.is_file() and mark.read_text().strip() == LAYOUT:
        return 0
    journal = storage_dir / "layout-migration.json"
    staging = storage_dir / "layout-staging"
    if journal.is_file():
        state = json.loads(journal.read_text())
        log.warning("object storage: resuming the move to the new key layout (phase %s)", state["phase"])
    else:
        moves = []
        if data_dir.is_dir():
            for bucket in sorted(p for p in data_dir.iterdir() if p.is_dir()):
                for f in sorted(bucket.rglob("*")):
                    if f.is_file() and not f.name.endswith(".partial"):
                        old = f.relative_to(bucket).as_posix()
                        moves.append([bucket.name, old, keynames.encode(old)])
        state = {"phase": 1, "moves": moves}
        _write(journal, state)
    moves = state["moves"]
    if state["phase"] == 1:
        for bucket, old, new in moves:
            src, dst = data_dir / bucket / old, staging / bucket / new
            if src.is_file() and not dst.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.rename(src, dst)
        state["phase"] = 2
        _write(journal, state)
    if state["phase"] == 2:
        for bucket in {m[0] for m in moves}:
            root = data_dir / bucket
            for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                try:
                    d.rmdir()   # only ever succeeds on an empty folder
                except OSError:
                    pass
        state["phase"] = 3
        _write(journal, state)
    for bucket, old, new in moves:
        src, dst = staging / bucket / new, data_dir / bucket / new
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, dst)
    for d in sorted((p for p in staging.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) \
            if staging.is_dir() else ():
        d.rmdir()
    if staging.is_dir():
        staging.rmdir()
    mark.write_text(LAYOUT + "\n")
    journal.unlink(missing_ok=True)
    if moves:
        log.warning("object storage: %d objects moved to the new key layout (keys as encoded names)", len(moves))
    return len(moves)
