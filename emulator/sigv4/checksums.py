"""The flexible checksums S3 clients send (x-amz-checksum-ALG as a header or a trailer).

Each factory makes an object with update(bytes) and digest() -> bytes; S3 carries the
digest base64-encoded. None: an algorithm pocketcloud cannot compute here, accepted as sent.
"""
from __future__ import annotations

import hashlib
import zlib
from typing import Any, Callable

PREFIX = "x-amz-checksum-"
NOT_CHECKSUMS = ("x-amz-checksum-algorithm", "x-amz-checksum-type")   # headers with the prefix that carry none


class _Crc32:
    def __init__(self):
        self.value = 0

    def update(self, data: bytes) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


def _crt_factory(name: str, size: int):
    """CRC32C and CRC64NVME from awscrt (what botocore[crt] uses too); without it those
    checksums are accepted unverified."""
    try:
        from awscrt import checksums  # type: ignore
    except Exception:  # noqa: BLE001
        return None
    crc = getattr(checksums, name, None)
    if crc is None:
        return None

    class _CrtCrc(_Crc32):
        def update(self, data: bytes) -> None:
            self.value = crc(data, self.value)

        def digest(self) -> bytes:
            return self.value.to_bytes(size, "big")

    return _CrtCrc


CHECKSUMS: dict[str, Callable[[], Any] | None] = {
    "crc32": _Crc32,
    "crc32c": _crt_factory("crc32c", 4),
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "crc64nvme": _crt_factory("crc64nvme", 8),
}


def announced(headers: dict[str, str]) -> tuple[str | None, str | None]:
    """(header name, value) of the checksum a request carries: a trailer announced in
    x-amz-trailer (value still to come), or an x-amz-checksum-* header; (None, None) if none."""
    trailer = headers.get("x-amz-trailer", "").strip().lower()
    if trailer.startswith(PREFIX):
        return trailer, None
    for k, v in headers.items():
        if k.startswith(PREFIX) and k not in NOT_CHECKSUMS:
            return k, v
    return None, None


def hasher_for(name: str):
    """A running checksum for header `name` (x-amz-checksum-ALG), or None when not computable."""
    factory = CHECKSUMS.get(name[len(PREFIX):])
    return factory() if factory else None
