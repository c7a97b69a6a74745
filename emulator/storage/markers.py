"""Folder markers on an engine that stores keys as paths (the embedded stand-in).

Tools create "directories" on S3 as empty objects whose key ends in '/' (pyarrow's
CreateDir, the console of many clouds, `aws s3api put-object --key dir/`). The stand-in
cannot hold both such a key and the keys under it: `dir/` becomes a file `dir`, listed under
the wrong name, and every `dir/...` then fails. So on that engine the cloud keeps an empty
key ending in '/' in its own index only: it answers HEAD and GET, lists among object
versions, and is deleted like any object; ListObjects (relayed from the engine) does not show
it, and a bucket holding only markers counts as empty (they go with it). A non-empty object
under such a key is refused rather than mangled. Keys are one flat namespace on engines
that have one (Ceph RGW, MinIO), and on this one once listings come from the index.
"""
from __future__ import annotations

import email.utils

from ..errors import InvalidParameter, NotFound
from .engine import Reply

EMPTY_ETAG = '"d41d8cd98f00b204e9800998ecf8427e"'


def is_marker(keys_are_paths: bool, key: str) -> bool:
    return keys_are_paths and key.endswith("/")


def refuse(engine_name: str, key: str, what: str = "an object with content") -> InvalidParameter:
    return InvalidParameter(f"{key[:80]!r}: this cloud's engine ({engine_name}) stores keys as paths, so a key "
                            f"ending in '/' can only be an empty folder marker, not {what}",
                            code="InvalidArgument")


def put(index, name: str, key: str, body, length: int, attrs) -> Reply:
    for _ in body if not isinstance(body, (bytes, bytearray)) else ():
        pass  # an empty body, read all the same (it is verified as it is read)
    index.record_object(name, key, 0, attrs)
    return Reply(200, [("ETag", EMPTY_ETAG)])


def get(index, name: str, key: str) -> Reply:
    written = index.written_at(name, key)
    if written is None:
        raise NotFound("The specified key does not exist.", code="NoSuchKey")
    return Reply(200, [("ETag", EMPTY_ETAG), ("Content-Length", "0"), ("Content-Type", "binary/octet-stream"),
                       ("Last-Modified", email.utils.formatdate(written, usegmt=True)), ("Accept-Ranges", "bytes")])


def listed(index, name: str) -> list[dict]:
    """The markers of a bucket as listing entries."""
    import time

    return [{"key": k, "size": 0, "etag": EMPTY_ETAG.strip('"'),
             "last_modified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))}
            for k, _, t in index.objects_in(name) if k.endswith("/")]
