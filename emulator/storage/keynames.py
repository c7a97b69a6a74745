"""Object keys as names on an engine that stores them as file paths (the embedded stand-in).

S3 keys are one flat namespace: `a`, `a/`, `a/b` and `a//b` are four unrelated objects. A
path-backed engine cannot hold `a` as a file and as a folder at once, drops empty path
segments and has a 255-byte limit per name. So on such an engine every key is stored under
a name of this encoding, which cannot collide and can be read back (reconcile and the
first-start migration need to):

- the key is split on '/'; each segment is percent-escaped down to [A-Za-z0-9._-] (so '~',
  '%', '/', spaces and unicode never appear raw; '.' and '..' alone are escaped too);
- every segment but the last is a folder: its escaped text, or `~~` when it is empty;
- the last segment is the file: `~` + its escaped text (a key ending in '/' is the file `~`);
- an escaped segment longer than PIECE is cut into folders `~+piece` that continue it;
- a key whose name would pass the engine's own limit on names (MAX_NAME bytes: escaping
  can triple a key) is stored as `~h/~` + the SHA-256 of the key instead. That name cannot
  be read back: only the index knows its key (`digest_name` finds it).

Folders never start with a single `~` followed by anything but `~`/`+`, files always do, so
no file can be another key's folder. Names stay readable for ASCII keys (`photos/cat.jpg` is
`photos/~cat.jpg`) and keep the key's extension (an engine may guess a type from it).
"""
from __future__ import annotations

import hashlib
import string

PIECE = 200     # escaped characters per path component, well under NAME_MAX (255 bytes)
MAX_NAME = 1024  # the stand-in refuses longer names (KeyTooLongError), as S3 does keys
DIGESTS = "~h/"  # the folder of digest names: no other name has a first folder `~h`
_SAFE = frozenset(string.ascii_letters + string.digits + "._-")


def _escape(segment: str) -> list[str]:
    """Escaped tokens of a segment (one per character or byte), never to be split apart."""
    if segment in (".", ".."):
        return ["%2E"] * len(segment)
    out = []
    for ch in segment:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return out


def _pieces(segment: str) -> list[str]:
    tokens, pieces, cur, size = _escape(segment), [], [], 0
    for t in tokens:
        if size + len(t) > PIECE:
            pieces.append("".join(cur))
            cur, size = [], 0
        cur.append(t)
        size += len(t)
    pieces.append("".join(cur))
    return pieces


def encode(key: str) -> str:
    """The engine name (a relative path) of `key`."""
    name = _encode(key)
    return name if len(name) <= MAX_NAME else digest_name(key)


def digest_name(key: str) -> str:
    return DIGESTS + "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_digest(name: str) -> bool:
    """Whether `name` is a digest name, whose key only the index knows."""
    return name.startswith(DIGESTS)


def _encode(key: str) -> str:
    segments = key.split("/")
    parts: list[str] = []
    for i, segment in enumerate(segments):
        pieces = _pieces(segment)
        parts.extend("~+" + p for p in pieces[:-1])
        last = pieces[-1]
        if i == len(segments) - 1:
            parts.append("~" + last)
        else:
            parts.append(last if last else "~~")
    return "/".join(parts)


def _unescape(text: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%":
            raw.append(int(text[i + 1:i + 3], 16))
            i += 3
        elif ch in _SAFE:
            raw.append(ord(ch))
            i += 1
        else:
            raise ValueError(f"not an escaped name: {text!r}")
    return raw.decode("utf-8")


def decode(name: str) -> str:
    """The key stored under engine name `name`; ValueError when no key has that name (a
    file of another layout, an engine's temp file) and for a digest name (is_digest)."""
    parts = name.split("/")
    segments: list[str] = []
    pending = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part.startswith("~+") and not last:
            pending += part[2:]
            continue
        if last:
            if not part.startswith("~") or part.startswith(("~~", "~+")):
                raise ValueError(f"not an encoded object name: {name!r}")
            text = pending + part[1:]
        elif part == "~~" and not pending:
            text = ""
        elif part and not part.startswith("~"):
            text = pending + part
        else:
            raise ValueError(f"not an encoded object name: {name!r}")
        segment = _unescape(text)
        segments.append(segment)
        pending = ""
    key = "/".join(segments)
    if pending or not key or encode(key) != name:  # only the canonical name of a key is one
        raise ValueError(f"not an encoded object name: {name!r}")
    return key
