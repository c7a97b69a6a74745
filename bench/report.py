"""The bench convention's output: a readable table on stdout and, with --json PATH,
{"bench": NAME, "rows": [{"metric", "pocketcloud", "raw", "ratio", "unit", "note"}]}."""
from __future__ import annotations

import json
from pathlib import Path


def row(metric: str, pocketcloud: float, raw: float | None, unit: str, note: str = "") -> dict:
    ratio = round(pocketcloud / raw, 3) if raw else None
    return {"metric": metric, "pocketcloud": round(pocketcloud, 4), "raw": None if raw is None else round(raw, 4),
            "ratio": ratio, "unit": unit, "note": note}


def emit(bench: str, rows: list[dict], json_path: str | None) -> None:
    width = max(len(r["metric"]) for r in rows)
    print(f"\n{bench}")
    print(f"{'metric':<{width}}  {'pocketcloud':>11}  {'raw':>9}  {'ratio':>6}  unit")
    for r in rows:
        raw = "-" if r["raw"] is None else f"{r['raw']:.3f}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['metric']:<{width}}  {r['pocketcloud']:>11.3f}  {raw:>9}  {ratio:>6}  {r['unit']}")
        if r["note"]:
            print(f"{'':<{width}}  ({r['note']})")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"bench": bench, "rows": rows}, indent=2) + "\n")
        print(f"written: {json_path}")
