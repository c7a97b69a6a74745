"""EC2's Filter.N and MaxResults/NextToken, one implementation for every Describe call.

A filter table maps each filter name a Describe call accepts to a function giving the
item's values for it; `tag:KEY`, `tag-key` and `tag-value` come for free when the call
says how to read an item's tags. Values match as EC2 matches them: any of the values,
with `*` and `?` wildcards. An unknown filter name is an error that lists the valid ones
(EC2 answers InvalidParameterValue too), never a silently ignored filter.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Callable, Iterable

from emulator.errors import InvalidParameter

from .params import filters, integer

Values = Callable[[object], "Iterable[str] | str | None"]


def _pattern(value: str) -> re.Pattern:
    return re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in value) + r"\Z",
                      re.DOTALL)


def _as_list(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (str, int, bool)):
        v = [v]
    return ["true" if x is True else "false" if x is False else str(x) for x in v if x is not None]


def apply(p: dict, items: list, table: dict[str, Values], tags: Callable[[object], dict] | None = None) -> list:
    for name, wanted in filters(p).items():
        pats = [_pattern(v) for v in wanted]
        if name in table:
            get = table[name]
        elif tags is not None and name.startswith("tag:") and len(name) > 4:
            key = name[4:]
            get = (lambda k: lambda it: [tags(it)[k]] if k in tags(it) else [])(key)
        elif tags is not None and name == "tag-key":
            get = lambda it: list(tags(it))  # noqa: E731
        elif tags is not None and name == "tag-value":
            get = lambda it: list(tags(it).values())  # noqa: E731
        else:
            valid = sorted(table) + (["tag:KEY", "tag-key", "tag-value"] if tags is not None else [])
            raise InvalidParameter(f"The filter '{name[:64]}' is invalid (valid filters: {', '.join(valid)})",
                                   code="InvalidParameterValue")
        items = [it for it in items if any(pt.match(v) for v in _as_list(get(it)) for pt in pats)]
    return items


def page(p: dict, items: list, low: int = 5, high: int = 1000, ids_param: str | None = None) -> tuple[list, str | None]:
    """One page of `items` by MaxResults/NextToken, with the bounds of the call."""
    max_results = integer(p, "MaxResults", None, low, high)
    if max_results is not None and ids_param and any(k.startswith(ids_param + ".") for k in p):
        raise InvalidParameter(f"The parameter {ids_param} cannot be used with the parameter MaxResults",
                               code="InvalidParameterCombination")
    token = p.get("NextToken")
    start = 0
    if token:
        try:
            kind, _, offset = base64.b64decode(token, validate=True).decode().partition(":")
            start = int(offset)
            if kind != "pc1" or start < 0:
                raise ValueError
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidParameter("The pagination token is not valid", code="InvalidPaginationToken") from None
    if max_results is None:
        return items[start:], None
    end = start + max_results
    return items[start:end], (base64.b64encode(f"pc1:{end}".encode()).decode() if end < len(items) else None)
