import os
import sqlite3
import stat

import pytest

from emulator.accounts import Accounts, read_credentials
from emulator.errors import AlreadyExists, InvalidParameter, Unauthorized
from emulator.state import MIGRATIONS, Store


def test_store_is_wal_and_versioned(tmp_path):
    store = Store(tmp_path / "s.db")
    assert store.schema_version == len(MIGRATIONS)
    assert store.one("PRAGMA journal_mode")[0] == "wal"
    Store(tmp_path / "s.db")  # re-opening migrates nothing and fails nothing


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path / "s.db")
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    con.close()
    with pytest.raises(RuntimeError, match="newer than this pocketcloud"):
        Store(tmp_path / "s.db")


def test_secrets_are_encrypted_at_rest_and_checked(tmp_path):
    accounts = Accounts(Store(tmp_path / "s.db"), tmp_path / "master.key")
    acct, key = accounts.create("alice")
    raw = (tmp_path / "s.db").read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("s.db-wal"))
    assert key.secret.encode() not in raw
    assert stat.S_IMODE(os.stat(tmp_path / "master.key").st_mode) == 0o600
    assert accounts.authenticate(key.key_id, key.secret) == acct
    with pytest.raises(Unauthorized):
        accounts.authenticate(key.key_id, key.secret + "x")
    with pytest.raises(Unauthorized):
        accounts.authenticate("AKIA0000000000000000", key.secret)
    with pytest.raises(AlreadyExists):
        accounts.create("alice")
    with pytest.raises(InvalidParameter):
        accounts.create("Alice; drop table")


def test_admin_bootstrap_writes_private_credentials_once(tmp_path):
    accounts = Accounts(Store(tmp_path / "s.db"), tmp_path / "master.key")
    admin = accounts.ensure_admin(tmp_path / "credentials")
    assert admin.is_admin
    mode = stat.S_IMODE(os.stat(tmp_path / "credentials").st_mode)
    assert mode == 0o600
    creds = read_credentials(tmp_path / "credentials")
    assert accounts.authenticate(creds.key_id, creds.secret).id == admin.id
    assert accounts.ensure_admin(tmp_path / "credentials").id == admin.id
    assert read_credentials(tmp_path / "credentials") == creds
