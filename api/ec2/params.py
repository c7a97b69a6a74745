"""Reading the EC2 Query protocol's flattened parameters (Name.N, Name.N.Sub, ...)."""
from __future__ import annotations

import re

from emulator.errors import InvalidParameter


def _sorted_indices(params: dict, prefix: str) -> list[str]:
    pat = re.compile(re.escape(prefix) + r"\.(\d+)(?:\.|$)")
    found = {m.group(1) for k in params if (m := pat.match(k))}
    return sorted(found, key=int)


def values(params: dict, prefix: str) -> list[str]:
    """Name.1, Name.2 ... -> [v1, v2]"""
    return [params[f"{prefix}.{i}"] for i in _sorted_indices(params, prefix) if f"{prefix}.{i}" in params]


def members(params: dict, prefix: str) -> list[dict]:
    """Name.1.A, Name.1.B.1 ... -> [{'A': .., 'B.1': ..}]"""
    out = []
    for i in _sorted_indices(params, prefix):
        head = f"{prefix}.{i}."
        out.append({k[len(head):]: v for k, v in params.items() if k.startswith(head)})
    return out


def filters(params: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in members(params, "Filter"):
        if "Name" not in f:
            raise InvalidParameter("each Filter needs a Name", code="InvalidParameterValue")
        out.setdefault(f["Name"], []).extend(values(f, "Value"))
    return out


def tags(params: dict, prefix: str = "Tag") -> dict[str, str]:
    out = {}
    for t in members(params, prefix):
        if "Key" not in t:
            raise InvalidParameter("each Tag needs a Key", code="InvalidParameterValue")
        out[t["Key"]] = t.get("Value", "")
    return out


def required(params: dict, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise InvalidParameter(f"the request must contain the parameter {name}", code="MissingParameter")
    return value


def integer(params: dict, name: str, default: int | None = None, low: int = 0, high: int = 1 << 31) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be an integer, got {raw[:20]!r}", code="InvalidParameterValue") from None
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be between {low} and {high}", code="InvalidParameterValue")
    return value
