"""Accounts, access keys and roles.

Secrets are encrypted at rest (Fernet, with a master key kept 0600 in the home), not
hashed: SigV4 verification needs the secret itself to recompute a signature.

Keys follow IAM: at most two per account, each Active or Inactive, deleted for good. A
disabled account keeps its resources, but every key of it is refused, as is an Inactive
key: `secret_for`, which every signature and password check goes through, says no.
"""
from __future__ import annotations

import hmac
import os
import re
import secrets
import string
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from .errors import AlreadyExists, InvalidParameter, InvalidState, NotFound, QuotaExceeded, Unauthorized
from .state import Store
from .timefmt import iso_utc

ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
KEY_ID = re.compile(r"^AKIA[A-Z0-9]{16}$")
ROLES = ("admin", "user")
MAX_KEYS = 2  # IAM's AccessKeysPerUser
KEY_STATUSES = ("Active", "Inactive")


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    role: str
    max_instances: int
    storage_quota: int | None
    disabled: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "max_instances": self.max_instances,
            "storage_quota": self.storage_quota,
            "disabled": self.disabled,
        }


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    secret: str


@dataclass(frozen=True)
class KeyInfo:
    """An access key as listed: never its secret."""
    key_id: str
    account_id: str
    status: str
    created_at: float

    def to_dict(self) -> dict:
        return {"access_key_id": self.key_id, "account": self.account_id, "status": self.status,
                "created_at": iso_utc(self.created_at)}


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _load_or_create_master_key(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        key = Fernet.generate_key()
        _write_private(path, key)
        return key


class Accounts:
    def __init__(self, store: Store, master_key_path: Path):
        self.store = store
        self._fernet = Fernet(_load_or_create_master_key(master_key_path))

    # -- accounts -----------------------------------------------------------------
    def create(self, name: str, role: str = "user", max_instances: int = 20) -> tuple[Account, AccessKey]:
        if not isinstance(name, str) or not ACCOUNT_NAME.fullmatch(name):
            raise InvalidParameter(
                "account name must be 2-32 characters: lowercase letters, digits and '-', starting with a letter"
            )
        if role not in ROLES:
            raise InvalidParameter(f"role must be one of {', '.join(ROLES)}")
        if not isinstance(max_instances, int) or isinstance(max_instances, bool) or not 0 <= max_instances <= 1000:
            raise InvalidParameter("max_instances must be an integer between 0 and 1000")
        account_id = "".join(secrets.choice(string.digits) for _ in range(12))
        key = self._new_key()
        with self.store.tx() as c:
            if c.execute("SELECT 1 FROM accounts WHERE name=?", (name,)).fetchone():
                raise AlreadyExists(f"account {name!r} already exists", code="AccountAlreadyExists")
            c.execute(
                "INSERT INTO accounts (id, name, role, max_instances, created_at) VALUES (?,?,?,?,?)",
                (account_id, name, role, max_instances, time.time()),
            )
            self._insert_key(c, account_id, key)
        return self.get(account_id), key

    def get(self, account_id: str) -> Account:
        row = self.store.one("SELECT * FROM accounts WHERE id=?", (account_id,))
        if row is None:
            raise NotFound(f"account {account_id} not found")
        return self._row(row)

    def by_name(self, name: str) -> Account:
        row = self.store.one("SELECT * FROM accounts WHERE name=?", (name,))
        if row is None:
            raise NotFound(f"account {name!r} not found")
        return self._row(row)

    def list(self) -> list[Account]:
        return [self._row(r) for r in self.store.query("SELECT * FROM accounts ORDER BY created_at")]

    def set_limits(self, account_id: str, *, max_instances: int | None = None, storage_quota: int | None = -1) -> Account:
        self.get(account_id)
        with self.store.tx() as c:
            if max_instances is not None:
                c.execute("UPDATE accounts SET max_instances=? WHERE id=?", (max_instances, account_id))
            if storage_quota != -1:
                c.execute("UPDATE accounts SET storage_quota=? WHERE id=?", (storage_quota, account_id))
        return self.get(account_id)

    def set_disabled(self, account_id: str, disabled: bool) -> Account:
        """Disable (every key refused, resources kept) or enable an account. The last enabled
        admin cannot be disabled: nobody could enable anything again."""
        if not isinstance(disabled, bool):
            raise InvalidParameter("disabled must be true or false")
        with self.store.tx() as c:
            row = c.execute("SELECT * FROM accounts WHERE id=?", (account_id,)).fetchone()
            if row is None:
                raise NotFound(f"account {account_id} not found")
            if disabled and row["role"] == "admin" and not c.execute(
                    "SELECT 1 FROM accounts WHERE role='admin' AND disabled=0 AND id!=?", (account_id,)).fetchone():
                raise InvalidState(f"{row['name']} is the last enabled admin; enable or create another admin first",
                                   code="LastAdmin")
            c.execute("UPDATE accounts SET disabled=? WHERE id=?", (int(disabled), account_id))
        return self.get(account_id)

    @staticmethod
    def _row(row) -> Account:
        return Account(row["id"], row["name"], row["role"], row["max_instances"], row["storage_quota"],
                       bool(row["disabled"]))

    # -- keys ---------------------------------------------------------------------
    @staticmethod
    def _new_key() -> AccessKey:
        alphabet = string.ascii_uppercase + string.digits
        key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
        secret = "".join(secrets.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
        return AccessKey(key_id, secret)

    def _insert_key(self, c, account_id: str, key: AccessKey) -> None:
        c.execute("INSERT INTO access_keys (key_id, account_id, secret_enc, created_at) VALUES (?,?,?,?)",
                  (key.key_id, account_id, self._fernet.encrypt(key.secret.encode()), time.time()))

    def create_key(self, account_id: str) -> AccessKey:
        """A new Active key; its secret is returned here, once."""
        key = self._new_key()
        with self.store.tx() as c:
            if c.execute("SELECT 1 FROM accounts WHERE id=?", (account_id,)).fetchone() is None:
                raise NotFound(f"account {account_id} not found")
            count = c.execute("SELECT COUNT(*) FROM access_keys WHERE account_id=?", (account_id,)).fetchone()[0]
            if count >= MAX_KEYS:
                raise QuotaExceeded(f"Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS}; delete a key first",
                                    code="LimitExceeded")
            self._insert_key(c, account_id, key)
        return key

    def list_keys(self, account_id: str) -> list[KeyInfo]:
        return [KeyInfo(r["key_id"], r["account_id"], r["status"], r["created_at"]) for r in self.store.query(
            "SELECT key_id, account_id, status, created_at FROM access_keys WHERE account_id=? ORDER BY created_at",
            (account_id,))]

    def key(self, key_id: str, account_id: str | None = None) -> KeyInfo:
        """One key (of `account_id` when given: another account's key is then as unknown as
        a missing one)."""
        row = self.store.one("SELECT key_id, account_id, status, created_at FROM access_keys WHERE key_id=?",
                             (key_id,)) if isinstance(key_id, str) else None
        if row is None or (account_id is not None and row["account_id"] != account_id):
            raise NotFound(f"The Access Key with id {str(key_id)[:32]} cannot be found.", code="NoSuchEntity")
        return KeyInfo(row["key_id"], row["account_id"], row["status"], row["created_at"])

    def set_key_status(self, key_id: str, status: str) -> KeyInfo:
        if status not in KEY_STATUSES:
            raise InvalidParameter(f"status must be one of {', '.join(KEY_STATUSES)}", code="ValidationError")
        self.key(key_id)
        with self.store.tx() as c:
            c.execute("UPDATE access_keys SET status=? WHERE key_id=?", (status, key_id))
        return self.key(key_id)

    def delete_key(self, key_id: str) -> None:
        self.key(key_id)
        with self.store.tx() as c:
            c.execute("DELETE FROM access_keys WHERE key_id=?", (key_id,))

    def secret_for(self, key_id: str) -> tuple[Account, str]:
        """The account and plaintext secret of a key id (for signature checks). Unknown and
        Inactive keys and the keys of a disabled account are refused alike."""
        if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
            raise Unauthorized("unknown access key id", code="InvalidAccessKeyId")
        row = self.store.one(
            "SELECT k.secret_enc, k.status AS key_status, a.* FROM access_keys k JOIN accounts a ON a.id = k.account_id "
            "WHERE k.key_id=?", (key_id,),
        )
        if row is None:
            raise Unauthorized("unknown access key id", code="InvalidAccessKeyId")
        if row["key_status"] != "Active":
            raise Unauthorized(f"the access key {key_id} is inactive", code="InvalidAccessKeyId")
        if row["disabled"]:
            raise Unauthorized(f"account {row['name']} is disabled: all its keys are refused; an admin can enable it",
                               code="AccountDisabled")
        return self._row(row), self._fernet.decrypt(row["secret_enc"]).decode()

    def authenticate(self, key_id: str, secret: str) -> Account:
        account, expected = self.secret_for(key_id)
        if not hmac.compare_digest(expected.encode(), (secret or "").encode()):
            raise Unauthorized("wrong secret for this access key id", code="SignatureDoesNotMatch")
        return account

    # -- bootstrap ----------------------------------------------------------------
    def ensure_admin(self, credentials_path: Path) -> Account:
        """Create the first admin and write its keys to a 0600 file, once."""
        row = self.store.one("SELECT * FROM accounts WHERE role='admin' ORDER BY created_at LIMIT 1")
        if row is not None and credentials_path.exists():
            return self._row(row)
        if row is None:
            account, key = self.create("admin", role="admin", max_instances=1000)
        else:
            # The credentials file was deleted: issue a fresh key rather than leave the admin locked out.
            # (the host's operator: past the two-key limit if need be, so a lost file never locks out)
            account = self._row(row)
            key = self._new_key()
            with self.store.tx() as c:
                self._insert_key(c, account.id, key)
        _write_private(
            credentials_path,
            f"[pocketcloud]\naws_access_key_id = {key.key_id}\naws_secret_access_key = {key.secret}\n".encode(),
        )
        return account


def read_credentials(path: Path) -> AccessKey:
    values = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            values[k.strip()] = v.strip()
    return AccessKey(values["aws_access_key_id"], values["aws_secret_access_key"])
