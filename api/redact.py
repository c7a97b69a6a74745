"""Signatures and secrets never reach a log line.

Presigned URLs carry their signature in the query string, which gunicorn's access log
prints with the request line; an exception message can quote a header or a JSON body.
A log line is a copy anyone with the log can replay, so every handler pocketcloud's
server logs through gets `RedactingFilter`, which rewrites the formatted message.
"""
from __future__ import annotations

import logging
import re

MASK = "REDACTED"

_PATTERNS: list[tuple[re.Pattern, str]] = [
    # query strings and Authorization headers: X-Amz-Signature=, Signature= (SigV2), chunk-signature=
    (re.compile(r"(?i)((?:x-amz-)?(?:chunk-)?signature=)[^&\s\"',;]+"), r"\1" + MASK),
    (re.compile(r"(?i)(x-amz-security-token=)[^&\s\"',;]+"), r"\1" + MASK),
    # HTTP auth schemes
    (re.compile(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9+/=._~-]{8,}"), r"\1 " + MASK),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]+"), r"\1" + MASK),
    # JSON or Python-dict fields, key=value and export lines naming a secret
    (re.compile(r"(?i)([\"']?(?:[a-z_]*secret[a-z_]*|private_key|password|key_material)[\"']?\s*[:=]\s*)"
                r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,&}]+)"), r"\1" + MASK),
]


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with the secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is logged as is
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(*loggers: logging.Logger) -> None:
    """Add the filter to every handler of these loggers (handlers see propagated records too)."""
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
