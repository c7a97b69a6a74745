"""Reading AWS Query parameters into nested values.

`Tags.member.2.Key=k` (Query services) and `TagSpecification.2.Tag.1.Key=k` (EC2) both
flatten lists as numbered segments; this turns them back into lists and dicts so the
emulator validates one nested value instead of many flat keys.
"""
from __future__ import annotations

import re

from emulator.errors import InvalidParameter

_INDEX = re.compile(r"\d{1,4}")
MAX_INDEX = 1000


def nested(params: dict[str, str], prefix: str, rename: dict[str, str] | None = None):
    """The value under `prefix` (None when absent): numbered segments become lists (in index
    order), `member` segments are skipped, other segments become dict keys (renamed by
    `rename`, e.g. EC2's singular `Tag` -> the model's `Tags`)."""
    rename = rename or {}
    tree: dict = {}
    found = False
    for key, value in params.items():
        if key != prefix and not key.startswith(prefix + "."):
            continue
        found = True
        parts = [p for p in key[len(prefix):].split(".") if p and p != "member"]
        node = tree
        for i, part in enumerate(parts):
            if _INDEX.fullmatch(part) and int(part) > MAX_INDEX:
                raise InvalidParameter(f"{key[:80]}: index larger than {MAX_INDEX}", code="ValidationError")
            slot = (int(part),) if _INDEX.fullmatch(part) else rename.get(part, part)
            if i == len(parts) - 1:
                node[slot] = value
            else:
                child = node.setdefault(slot, {})
                if not isinstance(child, dict):
                    raise InvalidParameter(f"{key[:80]} mixes a value and a structure", code="ValidationError")
                node = child
        if not parts:
            tree[None] = value
    if not found:
        return None
    return _lists(tree)


def _lists(node):
    if not isinstance(node, dict):
        return node
    if None in node:
        if len(node) > 1:
            raise InvalidParameter("a parameter is given both as a value and as a structure", code="ValidationError")
        return node[None]
    keys = list(node)
    if keys and all(isinstance(k, tuple) for k in keys):
        return [_lists(node[k]) for k in sorted(keys)]
    if any(isinstance(k, tuple) for k in keys):
        raise InvalidParameter("a parameter mixes numbered and named members", code="ValidationError")
    return {k: _lists(v) for k, v in node.items()}
