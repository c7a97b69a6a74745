"""AWS Signature Version 4 in one place, for every signed front end and for the engine client.

    signing.py    canonical requests, signing keys, sign_headers/presign_query, query_pairs
    verify.py     checking a request's signature (header, presigned, S3's SigV2 query form)
    chunked.py    the body, decoded and verified while it streams (aws-chunked included)
    checksums.py  x-amz-checksum-* algorithms

Pure: no HTTP framework. The front ends hand over a `SignedRequest` and a body stream.
"""
from .chunked import PIECE, Payload
from .signing import (ALGORITHM, AMZ_DATE_FORMAT, EMPTY_SHA256, STREAMING_PAYLOADS, STREAMING_SIGNED,
                      STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD, canonical_query,
                      canonical_request, chunk_string_to_sign, hmac_hex, presign_query, query_pairs, scope_string,
                      sign_headers, signing_key, string_to_sign, trailer_string_to_sign, uri_encode)
from .verify import (MAX_PRESIGN_EXPIRES, MAX_SKEW, Scope, SecretLookup, SignedRequest, Verified, is_signed,
                     scope_service, verify)

__all__ = [
    "ALGORITHM", "AMZ_DATE_FORMAT", "EMPTY_SHA256", "MAX_PRESIGN_EXPIRES", "MAX_SKEW", "PIECE", "Payload",
    "STREAMING_PAYLOADS", "STREAMING_SIGNED", "STREAMING_SIGNED_TRAILER", "STREAMING_UNSIGNED_TRAILER",
    "Scope", "SecretLookup", "SignedRequest", "UNSIGNED_PAYLOAD", "Verified", "canonical_query",
    "canonical_request", "chunk_string_to_sign", "hmac_hex", "is_signed", "presign_query", "query_pairs",
    "scope_service", "scope_string", "sign_headers", "signing_key", "string_to_sign", "trailer_string_to_sign",
    "uri_encode", "verify",
]
