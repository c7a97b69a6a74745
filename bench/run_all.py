#!/usr/bin/env python3
"""Run every benchmark and write one table: `make bench`.

Each script runs standalone in its own process with `--json PATH` (the bench convention:
{"bench": NAME, "rows": [{"metric", "pocketcloud", "raw", "ratio", "unit", "note"}]}), its
output kept in artifacts/bench/NAME.log. A script that fails, times out, or writes no rows
becomes a row saying so, and the others still run: one broken benchmark must not hide the
figures of three good ones.

Writes artifacts/bench.md and artifacts/bench.json; exits 1 if any benchmark failed.
Usage: .venv/bin/python bench/run_all.py [--only NAME ...] [--timeout SECONDS] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from emulator.timefmt import human_utc  # noqa: E402

BENCHES = ["container_start", "vm_boot", "s3_gateway", "ec2_api"]


def run_one(name: str, out: Path, timeout: float, script: Path | None = None) -> dict:
    """{"bench", "ok", "seconds", "rows", "error"}: never raises for a benchmark's own failure."""
    script = script or HERE / f"{name}.py"
    json_path, log_path = out / f"{name}.json", out / f"{name}.log"
    json_path.unlink(missing_ok=True)
    started = time.monotonic()
    with open(log_path, "w") as log:
        try:
            proc = subprocess.run([sys.executable, str(script), "--json", str(json_path)],
                                  stdout=log, stderr=subprocess.STDOUT, timeout=timeout, cwd=HERE.parent)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
    result = {"bench": name, "ok": False, "seconds": round(time.monotonic() - started, 1), "rows": [], "error": "",
              "log": _shown(log_path)}
    if rc is None:
        result["error"] = f"timed out after {timeout:.0f} s"
    elif rc != 0:
        result["error"] = f"exit {rc}: {_last_line(log_path)}"
    else:
        try:
            data = json.loads(json_path.read_text())
            rows = data["rows"]
            if not isinstance(rows, list) or not rows:
                raise ValueError("no rows")
            result.update(ok=True, rows=[_row(r) for r in rows])
        except FileNotFoundError:
            result["error"] = f"wrote no {json_path.name}"
        except (ValueError, KeyError, TypeError) as e:
            result["error"] = f"{json_path.name} is not in the bench convention ({e!r})"
    return result


def _row(r: dict) -> dict:
    return {"metric": str(r["metric"]), "pocketcloud": r.get("pocketcloud"), "raw": r.get("raw"),
            "ratio": r.get("ratio"), "unit": r.get("unit", ""), "note": r.get("note", "")}


def _shown(path: Path) -> str:
    """Relative to the checkout when inside it (the table is read there)."""
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def _num(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def markdown(results: list[dict], meta: dict) -> str:
    out = ["# pocketcloud benchmarks", "",
           f"{meta['when']} on {meta['host']} ({meta['cpus']} CPUs, kernel {meta['kernel']}). "
           "`raw` is the engine used directly in the same run; ratio = pocketcloud / raw.", "",
           "| bench | metric | pocketcloud | raw | ratio | unit | note |", "|---|---|---|---|---|---|---|"]
    for res in results:
        if not res["ok"]:
            out.append(f"| {res['bench']} | **FAILED** | – | – | – | – | {_cell(res['error'])} (log: {res['log']}) |")
            continue
        for r in res["rows"]:
            out.append(f"| {res['bench']} | {_cell(r['metric'])} | {_num(r['pocketcloud'])} | {_num(r['raw'])} | "
                       f"{_num(r['ratio'])} | {_cell(r['unit'])} | {_cell(r['note'])} |")
    out += ["", "Durations: " + ", ".join(f"{r['bench']} {r['seconds']} s" for r in results), ""]
    return "\n".join(out)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=BENCHES, help="run only these")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    ap.add_argument("--out", type=Path, default=HERE.parent / "artifacts", help="where bench.md/json go")
    args = ap.parse_args()
    logs = args.out / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.only or BENCHES:
        print(f"[bench] {name} ...", flush=True)
        res = run_one(name, logs, args.timeout)
        print(f"[bench] {name}: {'ok' if res['ok'] else 'FAILED: ' + res['error']} ({res['seconds']} s)", flush=True)
        results.append(res)
    meta = {"when": human_utc(time.time()), "host": platform.node(), "cpus": len(os.sched_getaffinity(0)),
            "kernel": platform.release()}
    md = markdown(results, meta)
    (args.out / "bench.md").write_text(md)
    (args.out / "bench.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(md)
    print(f"[bench] wrote {args.out / 'bench.md'} and {args.out / 'bench.json'}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
