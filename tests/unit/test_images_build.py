"""Image builds (emulator/images.py) with a recipe of our own: its output reaches the
progress callback line by line while it runs, and two builds of one recipe at the same
time run it once (the cache folder is shared by every cloud on the host)."""
from __future__ import annotations

import threading
from pathlib import Path

from emulator.images import STEP, Images
from emulator.state import Store

RECIPE = """#!/usr/bin/env bash
set -euo pipefail
out=$1
echo "one" >> "$COUNT"
echo "first line"
# The next line is printed only once the reader has seen the first: a reader that waits
# for a buffer to fill (or for the end) would make this time out.
for i in $(seq 100); do [ -e "$SEEN" ] && break; sleep 0.1; done
[ -e "$SEEN" ] && echo "second line" || echo "the first line was not read while the recipe ran"
printf 'progress 50%%\\rprogress 100%%\\n'
echo '{"kernel": "k"}' > "$out/vm.json"
"""


def _images(tmp_path: Path, monkeypatch) -> Images:
    recipes = tmp_path / "recipes" / "fake"
    recipes.mkdir(parents=True)
    (recipes / "build.sh").write_text(RECIPE)
    monkeypatch.setenv("COUNT", str(tmp_path / "count"))
    monkeypatch.setenv("SEEN", str(tmp_path / "seen"))
    return Images(Store(tmp_path / "state.db"), tmp_path / "recipes", tmp_path / "cache", None)


def test_a_recipes_output_streams_while_it_runs(tmp_path, monkeypatch):
    images = _images(tmp_path, monkeypatch)
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line == "first line":
            (tmp_path / "seen").touch()

    built = images.build("fake", progress=progress)
    output = [ln for ln in lines if not ln.startswith(STEP)]
    assert output == ["first line", "second line", "progress 50%", "progress 100%"]
    assert built["kinds"] == ["vm"] and lines[0].startswith(STEP) and lines[-1] == f"{STEP}fake: ready (vm)"


def test_two_builds_of_one_recipe_run_it_once(tmp_path, monkeypatch):
    images = _images(tmp_path, monkeypatch)
    (tmp_path / "seen").touch()
    results, said = [], []
    threads = [threading.Thread(target=lambda: results.append(images.build("fake", progress=said.append)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (tmp_path / "count").read_text() == "one\n"
    assert len(results) == 2 and results[0]["path"] == results[1]["path"]
    assert any("recipe unchanged" in line for line in said)
