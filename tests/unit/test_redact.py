"""No log line carries a signature or a secret (api/redact.py)."""
from __future__ import annotations

import logging

import pytest

from api.redact import MASK, RedactingFilter, install, redact

SIG4 = "4f0c9e6b1b3e8f1f0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

LINES = [
    f'127.0.0.1 "GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={SIG4}&X-Amz-Date=1 HTTP/1.1" 200',
    f'127.0.0.1 "GET /b/k?AWSAccessKeyId=AKIAX&Expires=1&Signature=abc%2Bdef%3D HTTP/1.1" 200',
    f"Authorization: AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-east-1/s3/aws4_request, "
    f"SignedHeaders=host, Signature={SIG4}",
    "Authorization: Basic QUtJQVg6d0phbHJYVXRuRkVNSQ==",
    f'{{"access_key_id": "AKIAX", "secret_access_key": "{SECRET}"}}',
    f"{{'SecretAccessKey': '{SECRET}'}}",
    f"export AWS_SECRET_ACCESS_KEY={SECRET}",
    f"aws_secret_access_key = {SECRET}",
    f"1000;chunk-signature={SIG4}",
    '{"private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\\nabc\\n-----END OPENSSH PRIVATE KEY-----\\n"}',
]


@pytest.mark.parametrize("line", LINES)
def test_secrets_and_signatures_are_masked(line):
    out = redact(line)
    assert MASK in out
    for secret in (SIG4, SECRET, "abc%2Bdef%3D", "QUtJQVg6d0phbHJYVXRuRkVNSQ==", "BEGIN OPENSSH"):
        assert secret not in out, out


def test_ordinary_lines_are_left_alone():
    for line in ['127.0.0.1 "GET /api/v1/instances HTTP/1.1" 200 512 3ms',
                 "wrong secret for this access key id", "SignatureDoesNotMatch: check your key",
                 "reconcile: {'terminated': ['i-0123456789abcdef0']}"]:
        assert redact(line) == line


def test_the_filter_rewrites_formatted_records_and_tracebacks(caplog):
    logger = logging.getLogger("redact-test")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(logging.Formatter().format(record))
    logger.addHandler(handler)
    install(logger)
    install(logger)  # idempotent
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    try:
        logger.warning("presigned %s", f"?X-Amz-Signature={SIG4}")
        try:
            raise ValueError(f"body was {{\"secret_access_key\": \"{SECRET}\"}}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert len(seen) == 2
    assert all(SIG4 not in s and SECRET not in s for s in seen), seen
    assert "ValueError" in seen[1]
