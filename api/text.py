"""Formatting for people, shared by the CLI and the console (no Flask here: the CLI imports it)."""
from __future__ import annotations


def fmt_size(n) -> str:
    """Bytes for people: 1.5 MiB."""
    if n is None:
        return "-"
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
