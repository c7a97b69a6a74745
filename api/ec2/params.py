"""Reading the EC2 Query protocol's flattened parameters (Name.N, Name.N.Sub, ...)."""
from __future__ import annotations

import base64
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


def tag_specifications(params: dict, allowed: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """TagSpecification.N: resource type -> tags, for the types this action creates."""
    out: dict[str, dict[str, str]] = {}
    for spec in members(params, "TagSpecification"):
        kind = spec.get("ResourceType", allowed[0])
        if kind not in allowed:
            raise InvalidParameter(f"'{str(kind)[:40]}' is not a valid taggable resource type for this operation",
                                   code="InvalidParameterValue")
        out.setdefault(kind, {}).update(tags(spec, "Tag"))
    return out


def base64_text(raw: str, what: str, code: str) -> str:
    try:
        return base64.b64decode(raw, validate=True).decode()
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text
        raise InvalidParameter(f"{what} must be base64-encoded UTF-8 text", code=code) from None


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


def boolean(params: dict, name: str, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise InvalidParameter(f"{name} must be true or false, got {raw[:20]!r}", code="InvalidParameterValue")


def attribute_value(params: dict, name: str) -> str | None:
    """EC2's attribute structures: `Name.Value=...` (what the SDKs send) or the older flat
    `Attribute=name&Value=...` form."""
    if f"{name}.Value" in params:
        return params[f"{name}.Value"]
    attr = params.get("Attribute")
    if attr and attr[:1].upper() + attr[1:] == name:
        return params.get("Value")
    return None


def mutating(handler):
    """Marks a handler that validates its input, then calls `dry_run(p)` before changing
    anything: with DryRun=true the caller learns whether the request would have succeeded."""
    handler.handles_dry_run = True
    return handler


def dry_run(params: dict) -> None:
    from ..errors import DryRunOperation

    if boolean(params, "DryRun"):
        raise DryRunOperation("Request would have succeeded, but DryRun flag is set.")
