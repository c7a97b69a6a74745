"""A request body, decoded and verified while it streams.

What the signature promised about the body decides how it is read: a hex SHA-256 (the
body must hash to it), UNSIGNED-PAYLOAD, or an `aws-chunked` encoding
(STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]) whose
chunk and trailer signatures and checksum trailers are verified while decoding. Only the
signed payload hash selects aws-chunked decoding: a Content-Encoding header is not signed
and must not turn a body bound to a digest into an unsigned stream.

The last piece of data is held back until every check has passed, so a consumer that
forwards the pieces with a fixed Content-Length never completes a request whose body
turns out to be forged: the receiver sees a short body and discards it.
"""
from __future__ import annotations

import base64
import hashlib
from typing import BinaryIO, Iterator, Mapping

from ..errors import Forbidden, InvalidParameter, Unauthorized
from .checksums import announced, hasher_for
from .signing import (STREAMING_PAYLOADS, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, UNSIGNED_PAYLOAD,
                      chunk_string_to_sign, hmac_hex, same, trailer_string_to_sign)
from .verify import HEX64, Verified

PIECE = 1024 * 1024         # how much of the body is read at once
MAX_CHUNK_HEADER = 4096


class _Reader:
    """Buffered reads over an input stream, bounded by the declared length."""

    def __init__(self, stream: BinaryIO, remaining: int | None):
        self.stream = stream
        self.remaining = remaining
        self.buf = b""

    def _fill(self, n: int) -> bool:
        if self.remaining is not None:
            n = min(n, self.remaining)
            if n <= 0:
                return False
        data = self.stream.read(n)
        if not data:
            return False
        if self.remaining is not None:
            self.remaining -= len(data)
        self.buf += data
        return True

    def read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at the end)."""
        if not self.buf:
            self._fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readline(self, limit: int = MAX_CHUNK_HEADER) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) > limit or not self._fill(PIECE if self.remaining is None else min(PIECE, 8192)):
                break
        i = self.buf.find(b"\n")
        if i < 0 or i > limit:
            raise InvalidParameter("malformed aws-chunked body", code="IncompleteBody")
        line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return line


class Payload:
    """The request payload, decoded and verified while it streams.

    `stream`: the raw body; `raw_length`: its Content-Length, or None to read to its end.
    `length` is the decoded size when known (Content-Length, or x-amz-decoded-content-length
    for aws-chunked). Iterate once. `checksum` is (name, base64 value) of a verified
    x-amz-checksum-* (header or trailer), to echo back as S3 does.
    """

    def __init__(self, stream: BinaryIO, headers: Mapping[str, str], auth: Verified | None,
                 raw_length: int | None):
        self.auth = auth
        self.payload_hash = (auth.payload_hash if auth else headers.get("x-amz-content-sha256")) or UNSIGNED_PAYLOAD
        self.chunked = self.payload_hash in STREAMING_PAYLOADS
        if self.chunked:
            try:
                self.length: int | None = int(headers["x-amz-decoded-content-length"])
            except (KeyError, ValueError):
                raise InvalidParameter("aws-chunked bodies need x-amz-decoded-content-length",
                                       code="MissingContentLength") from None
        elif "aws-chunked" in headers.get("content-encoding", "").lower():
            raise InvalidParameter("Content-Encoding aws-chunked needs a STREAMING-* x-amz-content-sha256 "
                                   "(the payload hash the request is signed with)", code="InvalidArgument")
        else:
            self.length = raw_length
        self._reader = _Reader(stream, raw_length)
        self.checksum: tuple[str, str] | None = None
        self._checksum_name, self._checksum_value = announced(dict(headers))
        self._checksum = hasher_for(self._checksum_name) if self._checksum_name else None
        self._consumed = False

    def __iter__(self) -> Iterator[bytes]:
        if self._consumed:
            raise RuntimeError("the request body can be read once")
        self._consumed = True
        held = None
        for piece in self._pieces():
            if not piece:
                continue
            if held is not None:
                yield held
            held = piece
        if held is not None:
            yield held

    def read_all(self, limit: int) -> bytes:
        """The whole (small) body, verified; InvalidParameter beyond `limit` bytes."""
        out = bytearray()
        for piece in self:
            out += piece
            if len(out) > limit:
                raise InvalidParameter(f"request body larger than {limit} bytes", code="MaxMessageLengthExceeded")
        return bytes(out)

    def _pieces(self) -> Iterator[bytes]:
        if self.chunked:
            yield from self._chunked_pieces()
        else:
            yield from self._plain_pieces()
        self._finish_checksum()

    def _plain_pieces(self) -> Iterator[bytes]:
        want = self.payload_hash
        hasher = hashlib.sha256() if HEX64.match(want) else None
        total = 0
        while True:
            piece = self._reader.read(PIECE)
            if not piece:
                break
            total += len(piece)
            if hasher:
                hasher.update(piece)
            if self._checksum:
                self._checksum.update(piece)
            yield piece
        if self.length is not None and total != self.length:
            raise InvalidParameter(f"the body ended after {total} of {self.length} bytes", code="IncompleteBody")
        if hasher and hasher.hexdigest() != want:
            raise InvalidParameter("The provided 'x-amz-content-sha256' header does not match what was computed.",
                                   code="XAmzContentSHA256Mismatch")

    def _chunk_size(self, line: bytes) -> tuple[int, str | None]:
        header = line.rstrip(b"\r\n").decode("latin-1")
        size_hex, _, ext = header.partition(";")
        try:
            size = int(size_hex.strip(), 16)
        except ValueError:
            raise InvalidParameter("malformed aws-chunked chunk header", code="IncompleteBody") from None
        ext = ext.strip()
        return size, ext[len("chunk-signature="):] if ext.startswith("chunk-signature=") else None

    def _chunked_pieces(self) -> Iterator[bytes]:
        signed = self.payload_hash in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        if signed and self.auth is None:
            raise Forbidden("a signed aws-chunked body needs a signed request", code="AccessDenied")
        prev_sig = self.auth.signature if signed else ""
        scope = str(self.auth.scope) if self.auth else ""
        total = 0
        reader = self._reader
        while True:
            size, chunk_sig = self._chunk_size(reader.readline())
            if signed and not chunk_sig:
                raise Unauthorized("aws-chunked chunk without chunk-signature", code="SignatureDoesNotMatch")
            hasher = hashlib.sha256() if signed else None
            left = size
            while left:
                piece = reader.read(min(left, PIECE))
                if not piece:
                    raise InvalidParameter("the aws-chunked body ended inside a chunk", code="IncompleteBody")
                left -= len(piece)
                total += len(piece)
                if total > self.length:
                    raise InvalidParameter("the aws-chunked body is longer than x-amz-decoded-content-length",
                                           code="IncompleteBody")
                if hasher:
                    hasher.update(piece)
                if self._checksum:
                    self._checksum.update(piece)
                yield piece
            if signed:
                sts = chunk_string_to_sign(self.auth.amz_date, scope, prev_sig, hasher.hexdigest())
                expected = hmac_hex(self.auth.signing_key, sts)
                if not same(expected, chunk_sig):
                    raise Unauthorized("aws-chunked chunk signature does not match", code="SignatureDoesNotMatch")
                prev_sig = expected
            if size == 0:
                break
            if reader.read(2) != b"\r\n":
                raise InvalidParameter("malformed aws-chunked body (no CRLF after chunk data)", code="IncompleteBody")
        if total != self.length:
            raise InvalidParameter(f"the aws-chunked body decoded to {total} bytes, "
                                   f"x-amz-decoded-content-length says {self.length}", code="IncompleteBody")
        self._read_trailers(prev_sig, scope)

    def _read_trailers(self, prev_sig: str, scope: str) -> None:
        """Trailers (for the -TRAILER variants), then an empty line."""
        trailers: list[tuple[str, str]] = []
        trailer_sig = None
        while True:
            try:
                line = self._reader.readline()
            except InvalidParameter:
                break  # body ended right after the last chunk: no trailer section
            text = line.rstrip(b"\r\n").decode("latin-1")
            if not text:
                break
            name, _, value = text.partition(":")
            name = name.strip().lower()
            if name == "x-amz-trailer-signature":
                trailer_sig = value.strip()
            else:
                trailers.append((name, value.strip()))
        if self.payload_hash == STREAMING_SIGNED_TRAILER and trailers:
            blob = "".join(f"{n}:{v}\n" for n, v in trailers).encode()
            sts = trailer_string_to_sign(self.auth.amz_date, scope, prev_sig, hashlib.sha256(blob).hexdigest())
            if not trailer_sig or not same(hmac_hex(self.auth.signing_key, sts), trailer_sig):
                raise Unauthorized("aws-chunked trailer signature does not match", code="SignatureDoesNotMatch")
        for name, value in trailers:
            if name == self._checksum_name:
                self._checksum_value = value

    def _finish_checksum(self) -> None:
        if not self._checksum_name:
            return
        if self._checksum_value is None:
            raise InvalidParameter(f"the announced trailer {self._checksum_name} was not sent",
                                   code="InvalidRequest")
        if self._checksum is None:
            return  # an algorithm we cannot compute here: accepted as sent
        got = base64.b64encode(self._checksum.digest()).decode()
        if got != self._checksum_value:
            raise InvalidParameter(f"Value for {self._checksum_name} header is invalid.", code="BadDigest")
        self.checksum = (self._checksum_name, got)
