"""POST policies (post_policy.py): conditions as S3 documents them."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from emulator.errors import Forbidden, InvalidParameter
from emulator.storage import post_policy

NOW = dt.datetime(2026, 11, 30, 5, 0, tzinfo=dt.timezone.utc)


def policy(*conditions, expiration="2026-11-30T06:00:00Z") -> str:
    return base64.b64encode(json.dumps({"expiration": expiration, "conditions": list(conditions)}).encode()).decode()


def test_conditions_hold():
    p = policy({"bucket": "b"}, ["starts-with", "$key", "up/"], ["eq", "$acl", "private"],
               ["starts-with", "$Content-Type", "image/"], ["content-length-range", 1, 10], {"x-amz-meta-a": "1"})
    post_policy.check(p, {"key": "up/x", "acl": "private", "content-type": "image/png,image/gif",
                          "x-amz-meta-a": "1", "x-ignore-me": "z", "policy": p}, "b", 5, NOW)


@pytest.mark.parametrize("fields, size, exc, code", [
    ({"key": "other/x"}, 5, Forbidden, "AccessDenied"),
    ({"key": "up/x", "extra": "1"}, 5, Forbidden, "AccessDenied"),
    ({"key": "up/x"}, 11, InvalidParameter, "EntityTooLarge"),
    ({"key": "up/x"}, 0, InvalidParameter, "EntityTooSmall"),
])
def test_conditions_fail(fields, size, exc, code):
    p = policy({"bucket": "b"}, ["starts-with", "$key", "up/"], ["content-length-range", 1, 10])
    with pytest.raises(exc) as e:
        post_policy.check(p, fields, "b", size, NOW)
    assert e.value.code == code


def test_expired_and_malformed():
    with pytest.raises(Forbidden, match="expired"):
        post_policy.check(policy(expiration="2026-11-30T04:59:59Z"), {}, "b", 1, NOW)
    for bad in ("not base64!", base64.b64encode(b"[]").decode(), policy(["nonsense"])):
        with pytest.raises(InvalidParameter):
            post_policy.check(bad, {}, "b", 1, NOW)
    with pytest.raises(Forbidden):   # another bucket's policy
        post_policy.check(policy({"bucket": "other"}), {}, "b", 1, NOW)
