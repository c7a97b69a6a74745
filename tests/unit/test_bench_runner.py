"""`make bench`'s runner: one table from every script's --json rows; a script that fails,
hangs or writes something else becomes a FAILED row, and the others still count."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("run_all", REPO / "bench" / "run_all.py")
run_all = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_all)

GOOD = '''
import argparse, json
ap = argparse.ArgumentParser(); ap.add_argument("--json"); a = ap.parse_args()
print("a readable table")
json.dump({"bench": "good", "rows": [{"metric": "start | median", "pocketcloud": 1.5, "raw": 1.0, "ratio": 1.5,
           "unit": "s", "note": "n"}]}, open(a.json, "w"))
'''
NO_JSON_FLAG = 'import argparse; argparse.ArgumentParser().parse_args()'  # an older script: argparse exits 2
FLAT = '''
import argparse, json
ap = argparse.ArgumentParser(); ap.add_argument("--json"); a = ap.parse_args()
json.dump({"put_ratio": 0.9}, open(a.json, "w"))
'''
HANGS = 'import time; time.sleep(30)'


def _script(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / f"{name}.py"
    p.write_text(text)
    return p


def test_good_script_rows_are_read(tmp_path):
    res = run_all.run_one("good", tmp_path, 60, _script(tmp_path, "good", GOOD))
    assert res["ok"] and res["rows"][0]["ratio"] == 1.5 and res["rows"][0]["unit"] == "s"
    assert "a readable table" in (tmp_path / "good.log").read_text()


def test_failures_become_rows_with_the_reason(tmp_path):
    old = run_all.run_one("old", tmp_path, 60, _script(tmp_path, "old", NO_JSON_FLAG))
    assert not old["ok"] and old["error"].startswith("exit 2:") and "--json" in old["error"]
    flat = run_all.run_one("flat", tmp_path, 60, _script(tmp_path, "flat", FLAT))
    assert not flat["ok"] and "not in the bench convention" in flat["error"]
    hung = run_all.run_one("hung", tmp_path, 1, _script(tmp_path, "hung", HANGS))
    assert not hung["ok"] and hung["error"] == "timed out after 1 s"


def test_one_table_with_failed_rows_and_escaped_cells(tmp_path):
    good = run_all.run_one("good", tmp_path, 60, _script(tmp_path, "good", GOOD))
    bad = run_all.run_one("old", tmp_path, 60, _script(tmp_path, "old", NO_JSON_FLAG))
    md = run_all.markdown([good, bad], {"when": "now", "host": "h", "cpus": 2, "kernel": "k"})
    assert "| good | start \\| median | 1.5 | 1 | 1.5 | s | n |" in md
    assert "| old | **FAILED** |" in md and f"(log: {tmp_path / 'old.log'}) |" in md
    json.dumps([good, bad])  # the JSON table is serialisable as is


def test_main_writes_both_files_and_fails_when_one_bench_fails(tmp_path, monkeypatch):
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    _script(bench_dir, "good", GOOD)
    _script(bench_dir, "old", NO_JSON_FLAG)
    monkeypatch.setattr(run_all, "HERE", bench_dir)
    monkeypatch.setattr(run_all, "BENCHES", ["good", "old"])
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--out", str(tmp_path / "out")])
    assert run_all.main() == 1
    data = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert [r["bench"] for r in data["results"]] == ["good", "old"]
    assert "**FAILED**" in (tmp_path / "out" / "bench.md").read_text()
