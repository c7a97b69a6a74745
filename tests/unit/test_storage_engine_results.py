"""Result documents the gateway mends before relaying (engine.py): Ceph 16.2 completes a
multipart upload with an empty ETag; the client gets the object's, as S3 answers."""
from __future__ import annotations

from emulator.storage.engine import Engine, Reply, result_etag

NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def test_an_empty_completion_etag_is_filled():
    doc = (f'<CompleteMultipartUploadResult xmlns="{NS}"><Bucket>b</Bucket><Key>k</Key><ETag></ETag>'
           "</CompleteMultipartUploadResult>").encode()
    mended = Engine._with_etag(Reply(200, [("Content-Length", str(len(doc)))], doc), "f70c-1")
    assert result_etag(mended, "CompleteMultipartUploadResult") == "f70c-1"
    assert b'<ETag>"f70c-1"</ETag>' in mended.body() and b"<Key>k</Key>" in mended.body()
    assert mended.header("content-length") is None   # the length is the new body's
    assert Engine._with_etag(Reply(200, [], doc), None).body() == doc
