"""Conditional requests decided by the cloud (conditions.py), as S3 documents them."""
from __future__ import annotations

import pytest

from emulator.errors import InvalidParameter, NotFound
from emulator.storage import conditions

ETAG = '"0123abcd"'
T = 1_700_000_000.0            # the object's Last-Modified
BEFORE, AFTER = "Mon, 13 Nov 2023 22:00:00 GMT", "Wed, 15 Nov 2023 00:00:00 GMT"   # T is 14 Nov 22:13:20


@pytest.mark.parametrize("headers, verdict", [
    ({}, None),
    ({"If-Match": ETAG}, None), ({"If-Match": "0123abcd"}, None), ({"If-Match": '"x", "0123abcd"'}, None),
    ({"If-Match": "*"}, None), ({"If-Match": '"other"'}, 412),
    ({"If-None-Match": ETAG}, 304), ({"If-None-Match": "*"}, 304), ({"If-None-Match": '"other"'}, None),
    ({"If-Modified-Since": AFTER}, 304), ({"If-Modified-Since": BEFORE}, None),
    ({"If-Unmodified-Since": BEFORE}, 412), ({"If-Unmodified-Since": AFTER}, None),
    ({"If-Modified-Since": "not a date"}, None),
    # S3's pairs: If-Match true wins over If-Unmodified-Since false; If-None-Match false over If-Modified-Since
    ({"If-Match": ETAG, "If-Unmodified-Since": BEFORE}, None),
    ({"If-None-Match": '"other"', "If-Modified-Since": AFTER}, None),
    ({"If-None-Match": ETAG, "If-Modified-Since": BEFORE}, 304),
    ({"If-Match": '"other"', "If-None-Match": '"other"'}, 412),
])
def test_read_verdicts(headers, verdict):
    assert conditions.read_verdict(headers, ETAG, T) == verdict


def test_copy_source_failures_are_all_412():
    conditions.check_copy_source({"x-amz-copy-source-if-match": ETAG}, ETAG, T)
    for h in ({"x-amz-copy-source-if-none-match": ETAG}, {"x-amz-copy-source-if-match": '"x"'},
              {"x-amz-copy-source-if-modified-since": AFTER}, {"x-amz-copy-source-if-unmodified-since": BEFORE}):
        with pytest.raises(InvalidParameter) as e:
            conditions.check_copy_source(h, ETAG, T)
        assert e.value.code == "PreconditionFailed"


def test_write_conditions():
    conditions.check_write({"if-none-match": "*"}, None)
    conditions.check_write({"if-match": ETAG}, "0123abcd")
    with pytest.raises(InvalidParameter) as e:
        conditions.check_write({"if-none-match": "*"}, "0123abcd")
    assert e.value.code == "PreconditionFailed"
    with pytest.raises(InvalidParameter) as e:
        conditions.check_write({"if-match": '"x"'}, "0123abcd")
    assert e.value.code == "PreconditionFailed"
    with pytest.raises(NotFound):
        conditions.check_write({"if-match": ETAG}, None)
    with pytest.raises(InvalidParameter) as e:
        conditions.check_write({"if-none-match": ETAG}, None)
    assert e.value.code == "NotImplemented"
