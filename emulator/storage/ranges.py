"""Range as S3 reads it, resolved by the cloud against the object's size so every engine gets
one plain `bytes=first-last` (the stand-in cannot serve suffix ranges past the start):
`bytes=a-b`, `bytes=a-` and `bytes=-n` (the last n bytes, the whole object when n is larger);
a range starting past the end is 416 InvalidRange; several ranges are refused (S3 serves one
range per request). A header that is no byte range at all is ignored, as HTTP says."""
from __future__ import annotations

import re

from ..errors import InvalidParameter

_ONE = re.compile(r"bytes=(\d*)-(\d*)")


def resolve(header: str | None, size: int) -> str | None:
    """The engine's Range for `header` on an object of `size` bytes; None: the whole object."""
    if header is None:
        return None
    value = header.strip()
    if not value.lower().startswith("bytes="):
        return None
    if "," in value:
        raise InvalidParameter("Only one byte range per request is supported (several ranges were asked for)",
                               code="InvalidArgument")
    m = _ONE.fullmatch(value.replace(" ", "").lower())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:                                   # suffix: the last n bytes
        n = int(last)
        if n == 0:
            raise _unsatisfiable()
        start = max(0, size - n)
        end = size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        if last and int(last) < start:
            return None                             # not a valid range: ignored (the whole object)
    if start >= size:
        raise _unsatisfiable()
    return f"bytes={start}-{end}"


def _unsatisfiable() -> InvalidParameter:
    return InvalidParameter("The requested range is not satisfiable", code="InvalidRange")
