"""Checks for every value that can reach an engine (docker call, libvirt XML, a path).

Each returns the clean value or raises InvalidParameter with a message that says what
a good value looks like.
"""
from __future__ import annotations

import re
import secrets
from typing import Any

from .compute.driver import PortForward
from .errors import InvalidParameter, NotFound

INSTANCE_ID = re.compile(r"^i-[0-9a-f]{17}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
TAG_KEY = re.compile(r"^[^\x00-\x1f]{1,128}$")
MAX_TAGS = 50
MAX_USER_DATA = 16 * 1024  # EC2's limit


def new_instance_id() -> str:
    return "i-" + secrets.token_hex(9)[:17]


def instance_id(value: Any) -> str:
    if not isinstance(value, str) or not INSTANCE_ID.fullmatch(value):
        raise InvalidParameter(
            f"invalid instance id {str(value)[:40]!r}: expected 'i-' followed by 17 hex digits",
            code="InvalidInstanceID.Malformed",
        )
    return value


def name(value: Any, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise InvalidParameter(
            f"invalid {what} {str(value)[:70]!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def image_name(value: Any) -> str:
    if not isinstance(value, str) or not IMAGE_NAME.fullmatch(value):
        raise InvalidParameter(
            f"invalid image name {str(value)[:70]!r}: use lowercase letters, digits, '.', '_' or '-'",
            code="InvalidAMIID.Malformed",
        )
    return value


def tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter("tags must be an object of string keys to string values")
    if len(value) > MAX_TAGS:
        raise InvalidParameter(f"at most {MAX_TAGS} tags per instance")
    clean = {}
    for k, v in value.items():
        if not isinstance(k, str) or not TAG_KEY.fullmatch(k) or k.lower().startswith("aws:"):
            raise InvalidParameter(f"invalid tag key {str(k)[:40]!r}: 1-128 printable characters, not starting with 'aws:'")
        if v is None:
            v = ""
        if not isinstance(v, str) or len(v) > 256 or any(ord(ch) < 32 for ch in v):
            raise InvalidParameter(f"invalid value for tag {k!r}: a string of at most 256 printable characters")
        clean[k] = v
    return clean


def user_data(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParameter("user_data must be a string (a shell script starting with #!)")
    if len(value.encode()) > MAX_USER_DATA:
        raise InvalidParameter(f"user_data is larger than {MAX_USER_DATA} bytes")
    if "\x00" in value:
        raise InvalidParameter("user_data must not contain NUL bytes")
    return value


def _port(value: Any, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 65535:
        raise InvalidParameter(f"{what} must be an integer between {low} and 65535, got {str(value)[:20]!r}")
    return value


def ports(value: Any) -> tuple[PortForward, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 32:
        raise InvalidParameter("ports must be a list of at most 32 objects like {\"guest\": 80, \"host\": 8080}")
    out: list[PortForward] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            item = {"guest": item}
        if not isinstance(item, dict) or "guest" not in item or set(item) - {"guest", "host", "protocol"}:
            raise InvalidParameter("each port must be an object like {\"guest\": 80} or {\"guest\": 80, \"host\": 8080}")
        proto = item.get("protocol", "tcp")
        if proto != "tcp":
            raise InvalidParameter("only tcp port forwards are supported")
        guest = _port(item["guest"], "guest port", 1)
        host = item.get("host")
        if host is not None:
            host = _port(host, "host port", 1024)
        out.append(PortForward(guest, host))
    if len({p.guest for p in out}) != len(out):
        raise InvalidParameter("each guest port may be forwarded once")
    hosts = [p.host for p in out if p.host]
    if len(set(hosts)) != len(hosts):
        raise InvalidParameter("each host port may be used once")
    return tuple(out)


def command(value: Any) -> list[str]:
    if isinstance(value, str) and value.strip():
        return ["/bin/sh", "-c", value]
    if isinstance(value, list) and value and all(isinstance(a, str) and "\x00" not in a for a in value) and len(value) <= 256:
        return value
    raise InvalidParameter("command must be a non-empty string (run by /bin/sh -c) or a list of strings")


def resource_id(value: Any, pattern: re.Pattern, prefix: str, code: str) -> str:
    """An EC2-shaped id (`vpc-…`, `vol-…`, …) or the AWS `<code>.Malformed` error."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidParameter(f"Invalid id: \"{str(value)[:40]}\" (expecting \"{prefix}-...\")",
                               code=f"{code}.Malformed")
    return value


def by_ids(items: list, ids: list[str] | None, pattern: re.Pattern, prefix: str, what: str,
           codes: tuple[str, str]) -> list:
    """The items (anything with an `id`) whose ids are asked for, each id well-formed and
    present, else the AWS codes (`codes`: the Malformed prefix, the NotFound code). Callers
    pass only the caller's own items, so another account's id answers like a missing one."""
    if not ids:
        return items
    have = {i.id for i in items}
    for i in ids:
        resource_id(i, pattern, prefix, codes[0])
    for i in ids:
        if i not in have:
            raise NotFound(f"The {what} '{i}' does not exist", code=codes[1])
    return [i for i in items if i.id in ids]
