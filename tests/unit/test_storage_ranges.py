"""Range resolved by the cloud against the object's size (ranges.py), as S3 reads it."""
from __future__ import annotations

import pytest

from emulator.errors import InvalidParameter
from emulator.storage import ranges


@pytest.mark.parametrize("header, size, want", [
    (None, 10, None), ("bytes=0-3", 10, "bytes=0-3"), ("bytes=-4", 10, "bytes=6-9"), ("bytes=-40", 10, "bytes=0-9"),
    ("bytes=7-", 10, "bytes=7-9"), ("bytes=5-99", 10, "bytes=5-9"), ("bytes=9-9", 10, "bytes=9-9"),
    ("items=0-3", 10, None), ("bytes=4-2", 10, None), ("bytes=x-y", 10, None), ("bytes=-", 10, None),
])
def test_ranges(header, size, want):
    assert ranges.resolve(header, size) == want


@pytest.mark.parametrize("header, size, code", [
    ("bytes=10-", 10, "InvalidRange"), ("bytes=0-", 0, "InvalidRange"), ("bytes=-0", 10, "InvalidRange"),
    ("bytes=0-1,3-4", 10, "InvalidArgument"),
])
def test_refused(header, size, code):
    with pytest.raises(InvalidParameter) as e:
        ranges.resolve(header, size)
    assert e.value.code == code
