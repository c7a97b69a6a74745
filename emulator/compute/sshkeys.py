"""SSH public-key checks and key-pair generation (for key pairs and the VM driver's own key).

A public key reaches a guest's authorized_keys through the NoCloud seed (YAML), so every
key is checked strictly: known type, valid base64 whose embedded type matches, a printable
one-line comment.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

from ..errors import InvalidParameter

KEY_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}
MAX_KEY = 16 * 1024
_COMMENT = re.compile(r"^[\x20-\x7e]{0,256}$")


def validate_public_key(value: object) -> str:
    """The key as one clean line 'TYPE BASE64 [COMMENT]', or InvalidParameter."""
    bad = InvalidParameter(
        "malformed SSH public key: expected one line like 'ssh-ed25519 AAAAC3Nza... comment'",
        code="InvalidKey.Format",
    )
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_KEY:
        raise bad
    line = value.strip()
    if "\n" in line or "\r" in line or "\x00" in line:
        raise bad
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise bad
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise bad from None
    if len(blob) < 4:
        raise bad
    (n,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + n] != parts[0].encode():
        raise bad
    comment = parts[2] if len(parts) == 3 else ""
    if not _COMMENT.match(comment):
        raise bad
    return f"{parts[0]} {parts[1]}" + (f" {comment}" if comment else "")


def fingerprint(public_key: str) -> str:
    """OpenSSH-style SHA256 fingerprint of a validated public key."""
    blob = base64.b64decode(validate_public_key(public_key).split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def generate_keypair(comment: str = "pocketcloud") -> tuple[str, str]:
    """A new ed25519 key pair: (private key in OpenSSH PEM format, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not _COMMENT.match(comment):
        raise InvalidParameter("key comment must be printable ASCII")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}".strip()
