"""SSH key pairs per account, as in EC2: create (the private key is returned once, never
stored) or import a public key; `key_name` on launch injects the public key."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from .compute.sshkeys import fingerprint, generate_keypair, validate_public_key
from .errors import AlreadyExists, InvalidParameter, NotFound
from .state import Store
from .timefmt import iso_utc

KEY_NAME = re.compile(r"[A-Za-z0-9 ._:/@-]{1,255}")


@dataclass(frozen=True)
class KeyPair:
    id: str
    owner: str
    name: str
    public_key: str
    fingerprint: str
    key_type: str
    created_at: float

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "fingerprint": self.fingerprint, "type": self.key_type,
                "public_key": self.public_key,
                "created_at": iso_utc(self.created_at)}


def _name(value) -> str:
    if not isinstance(value, str) or not KEY_NAME.fullmatch(value):
        raise InvalidParameter("key name must be 1-255 letters, digits, spaces or ._:/@-", code="InvalidKeyPair.Format")
    return value


class KeyPairs:
    def __init__(self, store: Store):
        self.store = store

    def _insert(self, owner: str, name: str, public_key: str) -> KeyPair:
        kp = KeyPair("key-" + secrets.token_hex(9)[:17], owner, name, public_key, fingerprint(public_key),
                     public_key.split()[0].replace("ssh-", ""), time.time())
        with self.store.tx() as c:
            if c.execute("SELECT 1 FROM keypairs WHERE owner=? AND name=?", (owner, name)).fetchone():
                raise AlreadyExists(f"the key pair {name!r} already exists", code="InvalidKeyPair.Duplicate")
            c.execute("INSERT INTO keypairs (id, owner, name, public_key, fingerprint, key_type, created_at) "
                      "VALUES (?,?,?,?,?,?,?)", (kp.id, owner, name, public_key, kp.fingerprint, kp.key_type,
                                                 kp.created_at))
        return kp

    def create(self, owner: str, name) -> tuple[KeyPair, str]:
        """Returns the key pair and its private key (OpenSSH PEM), which is not kept."""
        name = _name(name)
        private, public = generate_keypair(comment=name.replace(" ", "_"))
        return self._insert(owner, name, public), private

    def import_(self, owner: str, name, public_key) -> KeyPair:
        return self._insert(owner, _name(name), validate_public_key(public_key))

    def get(self, owner: str, name) -> KeyPair:
        row = self.store.one("SELECT * FROM keypairs WHERE owner=? AND name=?", (owner, _name(name)))
        if row is None:
            raise NotFound(f"the key pair {name!r} does not exist", code="InvalidKeyPair.NotFound")
        return KeyPair(**dict(row))

    def list(self, owner: str, names: list[str] | None = None) -> list[KeyPair]:
        rows = [KeyPair(**dict(r)) for r in self.store.query(
            "SELECT * FROM keypairs WHERE owner=? ORDER BY created_at", (owner,))]
        if names:
            missing = set(names) - {k.name for k in rows}
            if missing:
                raise NotFound(f"the key pair {sorted(missing)[0]!r} does not exist", code="InvalidKeyPair.NotFound")
            rows = [k for k in rows if k.name in names]
        return rows

    def delete(self, owner: str, name) -> None:
        with self.store.tx() as c:
            c.execute("DELETE FROM keypairs WHERE owner=? AND name=?", (owner, _name(name)))
